"""`sandgate dlp detokenize`: an admin turns a DLP token back into its value.
Every use leaves an audit row (who, why, never the value) before anything is
shown; no --reason, no value.

The tokens here are made the way the header src/dlp/sg_dlp_action.h
describes, through libsodium itself (ctypes), from a master key the test
sets: so the test also pins the token format a deployed gateway's tokens
keep."""

import base64
import ctypes
import ctypes.util
import json
import os
import sqlite3
import subprocess

import pytest

from conftest import BIN

MASTER = bytes(range(32))
MASTER_ENV = base64.urlsafe_b64encode(MASTER).decode().rstrip("=")

_lib = ctypes.util.find_library("sodium")
sodium = ctypes.CDLL(_lib) if _lib else None


def _generichash(out_len, msg, key):
    out = ctypes.create_string_buffer(out_len)
    assert sodium.crypto_generichash(out, ctypes.c_size_t(out_len), msg,
                                     ctypes.c_ulonglong(len(msg)), key,
                                     ctypes.c_size_t(len(key))) == 0
    return out.raw


def _kdf(subkey_id, key):
    out = ctypes.create_string_buffer(32)
    assert sodium.crypto_kdf_derive_from_key(out, ctypes.c_size_t(32),
                                             ctypes.c_uint64(subkey_id), b"sgdlptok", key) == 0
    return out.raw


def make_token(data_class, value, master=MASTER):
    """tok_ + base64url(SIV || XChaCha20(class NUL value)), no padding."""
    tk = _generichash(32, b"dlp-tokenize", master)
    mac, enc = _kdf(1, tk), _kdf(2, tk)
    pt = data_class.encode() + b"\0" + value.encode()
    siv = _generichash(24, pt, mac)
    ct = ctypes.create_string_buffer(len(pt))
    assert sodium.crypto_stream_xchacha20_xor(ct, pt, ctypes.c_ulonglong(len(pt)), siv, enc) == 0
    return "tok_" + base64.urlsafe_b64encode(siv + ct.raw).decode().rstrip("=")


pytestmark = pytest.mark.skipif(sodium is None, reason="libsodium is not installed")


def detokenize(data, *args, env_key=MASTER_ENV, user="alice"):
    env = dict(os.environ)
    env.pop("SANDGATE_MASTER_KEY_FILE", None)
    env.pop("SANDGATE_MASTER_KEY", None)
    if env_key is not None:
        env["SANDGATE_MASTER_KEY"] = env_key
    if user is not None:
        env["USER"] = user
    return subprocess.run([BIN, "dlp", "detokenize", *args, "--data-dir", data],
                          capture_output=True, text=True, timeout=60, env=env)


def audit_rows(data):
    path = os.path.join(data, "sandgate.db")
    if not os.path.exists(path):
        return []
    con = sqlite3.connect(path, timeout=5)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(
            "SELECT * FROM decisions WHERE operation = 'dlp.detokenize' ORDER BY id")]
    finally:
        con.close()


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    return str(d)


def test_detokenize_prints_the_value_and_audits_it(data):
    token = make_token("pii.email", "ada@example.com")
    p = detokenize(data, token, "--reason", "ticket SEC-42: customer asked for their data",
                   "--user", "dana")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "class: pii.email\nvalue: ada@example.com\n"
    rows = audit_rows(data)
    assert len(rows) == 1
    row = rows[0]
    assert row["decision"] == "admin"
    assert row["code"] == "detokenize"
    assert row["reason"] == "ticket SEC-42: customer asked for their data"
    assert row["user"] == "dana"
    assert row["role"] == "admin"
    # The audit names the class, never the value (nor the token itself).
    events = json.loads(row["dlp"])
    assert events[0]["class"] == "pii.email" and events[0]["action"] == "detokenize"
    for v in row.values():
        assert "ada@example.com" not in str(v)
        assert token not in str(v)


def test_user_defaults_to_user_env_and_json_output(data):
    token = make_token("financial.card", "4111 1111 1111 1111")
    # --data is accepted for --data-dir, as getopt takes an unambiguous prefix.
    env = dict(os.environ, SANDGATE_MASTER_KEY=MASTER_ENV, USER="erin")
    env.pop("SANDGATE_MASTER_KEY_FILE", None)
    p = subprocess.run([BIN, "dlp", "detokenize", token, "--reason", "chargeback 7",
                        "--json", "--data", data], capture_output=True, text=True,
                       timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["class"] == "financial.card"
    assert out["value"] == "4111 1111 1111 1111"
    rows = audit_rows(data)
    assert [r["user"] for r in rows] == ["erin"]
    assert out["trace_id"] == rows[0]["trace_id"]


def test_no_reason_is_refused_and_reveals_nothing(data):
    token = make_token("pii.email", "ada@example.com")
    for args in ([token], [token, "--reason", ""], [token, "--reason", "   "]):
        p = detokenize(data, *args)
        assert p.returncode == 1
        assert p.stdout == ""
        assert "--reason" in p.stderr and "nothing was revealed" in p.stderr
        assert "ada@example.com" not in p.stderr
    assert audit_rows(data) == []


def test_forged_token_is_refused_and_the_attempt_audited(data):
    token = make_token("pii.email", "ada@example.com")
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    p = detokenize(data, forged, "--reason", "curious")
    assert p.returncode == 1
    assert p.stdout == ""
    assert "not a token this gateway made" in p.stderr
    # Another installation's token: refused the same way.
    other = make_token("pii.email", "ada@example.com", master=b"\x01" * 32)
    p = detokenize(data, other, "--reason", "curious")
    assert p.returncode == 1 and p.stdout == ""
    rows = audit_rows(data)
    assert [r["code"] for r in rows] == ["detokenize_refused", "detokenize_refused"]
    assert all(r["reason"] == "curious" for r in rows)


def test_not_a_token_and_usage_errors(data):
    p = detokenize(data, "4111111111111111", "--reason", "x")
    assert p.returncode == 1 and "starts with \"tok_\"" in p.stderr
    p = detokenize(data, "--reason", "x")
    assert p.returncode == 1 and "exactly one TOKEN" in p.stderr
    p = subprocess.run([BIN, "dlp", "frobnicate"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "unknown dlp command" in p.stderr
    p = subprocess.run([BIN, "dlp", "detokenize", "--help"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and "--reason" in p.stdout
    assert audit_rows(data) == []


def test_without_a_master_key_nothing_is_made(data):
    token = make_token("pii.email", "ada@example.com")
    p = detokenize(data, token, "--reason", "ticket 1", env_key=None)
    assert p.returncode == 1
    assert "no master key" in p.stderr
    assert not os.path.exists(os.path.join(data, "master.key"))
    assert p.stdout == ""
