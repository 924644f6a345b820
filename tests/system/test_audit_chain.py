"""The tamper-evident audit (docs/audit.md), through the real binary.

Decisions are made through a running gateway, which is then stopped; each
test copies that store, tampers with it the way someone with sqlite3 could
(edit, delete, swap, cut the tail), and `sandgate audit verify` must exit 1
naming the first bad record, or 0 when nothing was touched.  Exports are
verified offline, and a retention prune leaves a chain that verifies.

Waits poll the store or the gateway's log against a deadline."""

import json
import os
import re
import shutil
import sqlite3
import subprocess

import pytest

from conftest import BIN, EXAMPLES, Gateway, audit, make_key, run_cli, wait_for

EVENT = {"title": "Review", "starts_at": "2026-01-05T10:00:00Z", "ends_at": "2026-01-05T11:00:00Z"}
CONFIG = """
sandbox:
  enabled: false
"""
CALLS = 12


def cli(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=120)


def verify(data):
    return cli("audit", "verify", "--data", data)


def make_calls(gw, key, n):
    """n calls: allowed ones and refusals (a bad body, no key), so the chain holds
    rows of different shapes."""
    for i in range(n):
        if i % 4 == 3:
            gw.post("calendar", "create_event", {"title": 5}, key=key)
        elif i % 4 == 2:
            gw.post("calendar", "create_event", EVENT)
        else:
            assert gw.post("calendar", "create_event", EVENT, key=key).status_code == 200


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A stopped gateway's data directory with CALLS decisions on the chain."""
    root = tmp_path_factory.mktemp("chain")
    data = str(root / "data")
    run_cli("apply", "-f", EXAMPLES, data_dir=data)
    key = make_key(data, "admin", user="ann")["key"]
    config = str(root / "sandgate.yaml")
    with open(config, "w") as f:
        f.write(CONFIG)
    gw = Gateway(data, config=config).start()
    try:
        make_calls(gw, key, CALLS)
        # Refusals for want of a key are recorded once per address per 10 s.
        audit(data, until=lambda rows: len(rows) >= CALLS - 2)
    finally:
        gw.assert_clean_exit(gw.stop())
    # The writer leaves the head in its log at stop: an anchor outside the store.
    heads = [l for l in gw.log_lines() if l.get("msg") == "audit chain head at stop"]
    assert heads and heads[-1]["chain"] == "main", gw.log_text()[-2000:]
    return data


@pytest.fixture
def store(recorded, tmp_path):
    """A copy of the recorded store, this test's to tamper with."""
    data = str(tmp_path / "copy")
    shutil.copytree(recorded, data)
    return data


def sql(data, *statements):
    con = sqlite3.connect(os.path.join(data, "sandgate.db"))
    try:
        with con:
            for s in statements:
                con.execute(s)
    finally:
        con.close()


def ids(data):
    con = sqlite3.connect(os.path.join(data, "sandgate.db"))
    try:
        return [r[0] for r in con.execute("SELECT id FROM decisions ORDER BY id")]
    finally:
        con.close()


def assert_tampered(p, record, words):
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    first = p.stdout.splitlines()[0]
    assert first.startswith("TAMPERED: "), p.stdout
    assert re.search(f"record #{record}\\D", first), p.stdout
    assert re.search(r"\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\)", first), p.stdout
    assert words in first, p.stdout


def test_intact_chain_verifies(store):
    p = verify(store)
    assert p.returncode == 0, p.stdout + p.stderr
    n = len(ids(store))
    assert n >= CALLS - 2
    assert p.stdout.startswith(f"intact: {n} records of the audit chain \"main\""), p.stdout


def test_edited_row_is_named(store):
    k = ids(store)[4]
    sql(store, f"UPDATE decisions SET user = 'mallory' WHERE id = {k}")
    assert_tampered(verify(store), k, "was changed after it was written")


def test_edit_of_a_number_column_is_named(store):
    k = ids(store)[2]
    sql(store, f"UPDATE decisions SET status = 200, latency_us = latency_us + 1 WHERE id = {k}")
    assert_tampered(verify(store), k, "was changed after it was written")


def test_deleted_row_is_named(store):
    all_ids = ids(store)
    k = all_ids[5]
    sql(store, f"DELETE FROM decisions WHERE id = {k}")
    p = verify(store)
    assert_tampered(p, all_ids[6], f"record #{k} is missing")


def test_swapped_rows_are_named(store):
    a, b = ids(store)[3], ids(store)[7]
    cols = [r[1] for r in sqlite3.connect(os.path.join(store, "sandgate.db"))
            .execute("PRAGMA table_info(decisions)") if r[1] != "id"]
    sets = ", ".join(f"{c} = (SELECT {c} FROM decisions WHERE id = {{other}})" for c in cols)
    # Through a spare id, so that each row takes the other's whole contents.
    sql(store,
        f"INSERT INTO decisions SELECT -1, {', '.join(cols)} FROM decisions WHERE id = {a}",
        f"UPDATE decisions SET {sets.format(other=b)} WHERE id = {a}",
        f"UPDATE decisions SET {sets.format(other=-1)} WHERE id = {b}",
        "DELETE FROM decisions WHERE id = -1")
    assert_tampered(verify(store), a, "was changed after it was written")


def test_swapped_rows_with_their_ids_are_named(store):
    """Renumbered so each keeps its own hash: the order itself is what changed."""
    a, b = ids(store)[3], ids(store)[4]
    sql(store, f"UPDATE decisions SET id = -1 WHERE id = {a}",
        f"UPDATE decisions SET id = {a} WHERE id = {b}",
        f"UPDATE decisions SET id = {b} WHERE id = -1")
    p = verify(store)
    assert_tampered(p, a, "was changed after it was written")


def test_truncated_tail_is_named(store):
    all_ids = ids(store)
    sql(store, f"DELETE FROM decisions WHERE id >= {all_ids[-2]}")
    p = verify(store)
    assert_tampered(p, all_ids[-2], "the newest records are missing")
    assert f"the last one left is #{all_ids[-3]}" in p.stdout, p.stdout
    assert f"the newest is #{all_ids[-1]}" in p.stdout, p.stdout


def test_deleted_first_row_is_named(store):
    all_ids = ids(store)
    sql(store, f"DELETE FROM decisions WHERE id = {all_ids[0]}")
    assert_tampered(verify(store), all_ids[1], "older records were deleted")


def test_row_added_behind_the_writer_is_named(store):
    sql(store, "INSERT INTO decisions (ts_us, decision, status) VALUES (1, 'allowed', 200)")
    last = ids(store)[-1]
    assert_tampered(verify(store), last, "carries no chain hash")


def export(data, out, *extra):
    p = cli("audit", "export", "--since", "30d", "--data", data, "--out", out, *extra)
    assert p.returncode == 0, p.stdout + p.stderr
    with open(out) as f:
        return [json.loads(line) for line in f]


def test_export_verifies_offline(store, tmp_path):
    out = str(tmp_path / "audit.jsonl")
    lines = export(store, out)
    n = len(ids(store))
    head, records, end = lines[0], lines[1:-1], lines[-1]
    assert head["type"] == "export" and head["chain"] == "main" and head["count"] == n
    assert end == {"type": "end", "count": n, "last_id": records[-1]["id"],
                   "last_hash": records[-1]["hash"]}
    assert head["anchor"] == records[0]["prev"] == "00" * 32
    assert oct(os.stat(out).st_mode & 0o777) == "0o600"
    # Offline: the store is gone.
    shutil.rmtree(store)
    p = cli("audit", "verify", "--file", out)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith(f"intact: {n} records"), p.stdout


def test_export_of_a_range_anchors_on_its_first_prev(store, tmp_path):
    con = sqlite3.connect(os.path.join(store, "sandgate.db"))
    ts = [r[0] for r in con.execute("SELECT ts_us FROM decisions ORDER BY id")]
    con.close()
    # RFC 3339 with microseconds, from the fifth record on.
    s, us = divmod(ts[4], 1000000)
    import datetime
    since = datetime.datetime.fromtimestamp(s, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S") + f".{us:06d}Z"
    out = str(tmp_path / "part.jsonl")
    p = cli("audit", "export", "--since", since, "--data", store, "--out", out)
    assert p.returncode == 0, p.stderr
    with open(out) as f:
        lines = [json.loads(line) for line in f]
    assert lines[1]["ts_us"] >= ts[4] and lines[1]["prev"] != "00" * 32
    assert cli("audit", "verify", "--file", out).returncode == 0


def test_edited_export_line_is_named(store, tmp_path):
    out = str(tmp_path / "audit.jsonl")
    export(store, out)
    with open(out) as f:
        text = f.read().splitlines()
    rec = json.loads(text[3])
    rec["user"] = "mallory"
    text[3] = json.dumps(rec)
    edited = str(tmp_path / "edited.jsonl")
    with open(edited, "w") as f:
        f.write("\n".join(text) + "\n")
    assert_tampered(cli("audit", "verify", "--file", edited), rec["id"],
                    "was changed after it was written")


def test_cut_export_is_named(store, tmp_path):
    out = str(tmp_path / "audit.jsonl")
    export(store, out)
    with open(out) as f:
        text = f.read().splitlines()
    cut = str(tmp_path / "cut.jsonl")
    with open(cut, "w") as f:
        f.write("\n".join(text[:-2]) + "\n")
    p = cli("audit", "verify", "--file", cut)
    assert p.returncode == 1, p.stdout
    assert "cut off" in p.stdout, p.stdout


def test_bad_times_are_refused(store):
    p = cli("audit", "export", "--since", "yesterday", "--data", store)
    assert p.returncode == 2
    assert "--since \"yesterday\": expected a time such as" in p.stderr, p.stderr
    p = cli("audit", "export", "--data", store)
    assert p.returncode == 2 and "needs --since" in p.stderr


def test_retention_prunes_behind_a_checkpoint(tmp_path):
    """A tiny retention and a writer that looks every 200 ms (test hook): old
    records go, a checkpoint names the last one, and verify still passes."""
    data = str(tmp_path / "data")
    run_cli("apply", "-f", EXAMPLES, data_dir=data)
    key = make_key(data, "admin", user="ann")["key"]
    config = str(tmp_path / "sandgate.yaml")
    with open(config, "w") as f:
        f.write(CONFIG + "audit:\n  retention: 1s\n")
    env = dict(os.environ, SANDGATE_TEST_AUDIT_EVERY_MS="200")
    gw = Gateway(data, config=config, popen={"env": env}).start()
    try:
        make_calls(gw, key, 6)
        # Every call's record goes once it is a second old, behind checkpoints.
        cps = audit(data, "1", timeout=30, until=lambda rows: rows and all(
            r["decision"] == "checkpoint" for r in rows))
        assert wait_for(lambda: verify(data).returncode == 0, timeout=10), verify(data).stdout
        # While the gateway writes and prunes on, verify sees one moment of the store.
        make_calls(gw, key, 4)
        p = verify(data)
        assert p.returncode == 0, p.stdout
    finally:
        gw.assert_clean_exit(gw.stop())
    reasons = [json.loads(r["reason"]) for r in cps]
    assert sum(c["pruned"] for c in reasons) >= 6, reasons
    assert all(len(c["last_hash"]) == 64 for c in reasons)
    assert all(r["code"] == "audit_retention" for r in cps)
    assert reasons[-1]["through_id"] < cps[-1]["id"]
    assert any(l.get("msg", "").startswith("pruned audit") for l in gw.log_lines())
    p = verify(data)
    assert p.returncode == 0, p.stdout
    # The oldest record left, deleted after the prune, is caught: the checkpoint anchors it.
    sql(data, f"DELETE FROM decisions WHERE id = {ids(data)[0]}")
    p = verify(data)
    assert p.returncode == 1, p.stdout
