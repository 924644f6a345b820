"""sandgate secrets: connector credentials set, listed, rotated and
re-sealed under a new master key, with a gateway serving beside the CLI.
Known credentials are planted and then searched for in every CLI output,
the gateway's log, /metrics, /readyz and every byte of the database files:
they must appear nowhere."""

import base64
import datetime
import glob
import json
import os
import shutil
import sqlite3
import subprocess

import pytest
import requests

from conftest import BIN, EXAMPLES, Gateway, run_cli, wait_for

PLANTED_BASIC = "crm-user:PLANTED-basic-pw-5150"
PLANTED_KEY = "PLANTED-api-key-8086"
PLANTED_NEXT = "crm-user:PLANTED-next-pw-6502"
PLANTED = [PLANTED_BASIC, PLANTED_KEY, PLANTED_NEXT, "PLANTED"]
PLANTED_B64 = [base64.b64encode(v.encode()).decode() for v in (PLANTED_BASIC, PLANTED_NEXT)]

# Every output the CLI and the gateway gave, searched at the end.
OUTPUTS = []


def cli(*args, data_dir, stdin=None, check=True, env=None):
    cmd = [BIN, "secrets", *args, "--data-dir", data_dir]
    p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60,
                       env=env)
    OUTPUTS.append(p.stdout + p.stderr)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    work = str(tmp_path_factory.mktemp("secrets"))
    os.chmod(work, 0o700)
    # The examples, with crm speaking basic auth.
    defs = os.path.join(work, "defs")
    shutil.copytree(EXAMPLES, defs)
    crm = os.path.join(defs, "connectors", "crm.yaml")
    with open(crm) as f:
        text = f.read()
    with open(crm, "w") as f:
        f.write(text.replace("auth: bearer", "auth: basic", 1))
    data = os.path.join(work, "data")
    run_cli("apply", "-f", defs, data_dir=data)
    g = Gateway(data).start()
    g.work = work
    yield g
    g.assert_clean_exit(g.stop())


def rows(gw):
    return json.loads(cli("list", "--json", data_dir=gw.data_dir).stdout)


def secrets_generation(gw):
    db = sqlite3.connect(f"file:{gw.data_dir}/sandgate.db?mode=ro", uri=True)
    try:
        return db.execute("SELECT value FROM meta WHERE key = 'secrets_generation'").fetchone()[0]
    finally:
        db.close()


def reloaded_at(gw, gen):
    return any(line.get("msg", "").startswith("connector credentials reloaded (secrets "
                                              f"generation {gen})")
               for line in gw.log_lines())


def test_help_on_every_subcommand(gw):
    for sub in ("set", "list", "rotate", "rotate-master"):
        p = subprocess.run([BIN, "secrets", sub, "--help"], capture_output=True, text=True)
        assert p.returncode == 0 and "usage: sandgate secrets" in p.stdout
    p = subprocess.run([BIN, "secrets", "nonsense"], capture_output=True, text=True)
    assert p.returncode != 0


def test_set_from_stdin_and_file_and_list_shows_no_value(gw):
    cli("set", "crm", "--stdin", data_dir=gw.data_dir, stdin=PLANTED_BASIC + "\n")
    path = os.path.join(gw.work, "mail.secret")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, (PLANTED_KEY + "\n").encode())
    os.close(fd)
    expires = (datetime.datetime.now(datetime.timezone.utc).date()
               + datetime.timedelta(days=3)).isoformat()
    cli("set", "mail", "--from-file", path, "--expires", expires, data_dir=gw.data_dir)
    listed = rows(gw)
    assert [(r["connector"], r["slot"]) for r in listed] == [("crm", "current"),
                                                             ("mail", "current")]
    assert all(len(r["key_id"]) == 16 for r in listed)
    text = cli("list", data_dir=gw.data_dir).stdout
    assert "crm" in text and expires in text


def test_what_set_refuses(gw):
    loose = os.path.join(gw.work, "loose.secret")
    with open(loose, "w") as f:
        f.write(PLANTED_KEY)
    os.chmod(loose, 0o640)
    p = cli("set", "calendar", "--from-file", loose, data_dir=gw.data_dir, check=False)
    assert p.returncode != 0 and "may be read by its group or other users" in p.stderr
    assert "chmod 600" in p.stderr
    # A value on the command line is never taken.
    p = cli("set", "calendar", "some-value", data_dir=gw.data_dir, check=False)
    assert p.returncode != 0 and "never an argument" in p.stderr
    p = cli("set", "calendar", data_dir=gw.data_dir, check=False)
    assert p.returncode != 0 and "--from-file F or --stdin" in p.stderr
    p = cli("set", "calendar", "--stdin", data_dir=gw.data_dir, stdin="\n", check=False)
    assert p.returncode != 0 and "empty" in p.stderr
    # crm speaks basic auth: user:password or nothing.
    p = cli("set", "crm", "--stdin", data_dir=gw.data_dir, stdin="no-colon", check=False)
    assert p.returncode != 0 and "user:password" in p.stderr
    assert "calendar" not in [r["connector"] for r in rows(gw)]
    # Not in the catalog yet: stored, with a warning.
    p = cli("set", "billing", "--stdin", data_dir=gw.data_dir, stdin="x")
    assert "not in the applied catalog" in p.stderr
    assert "billing" in [r["connector"] for r in rows(gw)]


def test_expiry_warning_in_readyz_and_metrics(gw):
    found = {}

    def warned():
        r = gw.admin_get("/readyz")
        found["readyz"] = r
        ws = r.json().get("warnings", [])
        return any(w["connector"] == "mail" and w["slot"] == "current" for w in ws)

    assert wait_for(warned, timeout=10), found["readyz"].text
    r = found["readyz"]
    assert r.status_code == 200 and r.json()["status"] == "ready"
    OUTPUTS.append(r.text)
    m = gw.admin_get("/metrics").text
    OUTPUTS.append(m)
    line = [l for l in m.splitlines()
            if l.startswith('sandgate_credential_expiry_seconds{connector="mail",slot="current"}')]
    assert len(line) == 1
    assert 0 < int(line[0].split()[-1]) <= 3 * 86400
    warnings = [l for l in gw.log_lines() if l.get("connector") == "mail" and "expires" in l]
    assert len(warnings) == 1, warnings  # once a day, not once a poll
    assert "mail" in warnings[0]["msg"] and warnings[0]["expires"] in warnings[0]["msg"]


def test_rotate_promotes_the_next_credential(gw):
    cli("set", "crm", "--next", "--stdin", data_dir=gw.data_dir, stdin=PLANTED_NEXT)
    assert ("crm", "next") in [(r["connector"], r["slot"]) for r in rows(gw)]
    p = cli("rotate", "crm", data_dir=gw.data_dir)
    assert "now the current one" in p.stdout
    crm = [r for r in rows(gw) if r["connector"] == "crm"]
    assert [r["slot"] for r in crm] == ["current"]
    p = cli("rotate", "crm", data_dir=gw.data_dir, check=False)
    assert p.returncode != 0 and "no next credential" in p.stderr
    gen = secrets_generation(gw)
    assert wait_for(lambda: reloaded_at(gw, gen), timeout=10), gw.log_text()[-2000:]


def test_rotate_master_while_serving(gw):
    before = {r["key_id"] for r in rows(gw)}
    assert len(before) == 1
    proc = subprocess.Popen([BIN, "secrets", "rotate-master", "--json", "--data-dir",
                             gw.data_dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    # Ready all along: asked again and again until the rotation is over.
    while proc.poll() is None:
        r = gw.admin_get("/readyz")
        assert r.status_code == 200 and r.json()["status"] == "ready", r.text
    stdout, stderr = proc.communicate(timeout=60)
    OUTPUTS.append(stdout + stderr)
    assert proc.returncode == 0, stderr
    out = json.loads(stdout)
    assert out["previous_key_id"] in before and out["key_id"] not in before
    assert out["resealed"] == len(rows(gw))
    assert {r["key_id"] for r in rows(gw)} == {out["key_id"]}
    # Only the new key file is left, 0600.
    keys = sorted(os.path.basename(p) for p in glob.glob(os.path.join(gw.data_dir, "master.key*")))
    assert keys == ["master.key"]
    assert os.stat(os.path.join(gw.data_dir, "master.key")).st_mode & 0o077 == 0
    # The gateway opened every record under the new key, and stayed ready.
    gen = secrets_generation(gw)
    assert wait_for(lambda: reloaded_at(gw, gen), timeout=10), gw.log_text()[-2000:]
    r = gw.admin_get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    assert not [l for l in gw.log_lines() if "not reloaded" in l.get("msg", "")]


def test_rotate_master_refuses_a_key_from_the_environment(gw):
    env = dict(os.environ, SANDGATE_MASTER_KEY=base64.urlsafe_b64encode(b"k" * 32).decode()
               .rstrip("="))
    p = cli("rotate-master", data_dir=gw.data_dir, env=env, check=False)
    assert p.returncode != 0
    assert "SANDGATE_MASTER_KEY" in p.stderr and "SANDGATE_MASTER_KEY_FILE" in p.stderr


def test_no_planted_value_anywhere(gw):
    """Last: the database files byte by byte, every table through SQLite,
    every CLI output, the log, /metrics and /readyz."""
    OUTPUTS.append(gw.admin_get("/metrics").text)
    OUTPUTS.append(gw.admin_get("/readyz").text)
    OUTPUTS.append(gw.log_text())
    blobs = []
    for path in glob.glob(os.path.join(gw.data_dir, "sandgate.db*")):
        with open(path, "rb") as f:
            blobs.append(f.read())
    db = sqlite3.connect(f"file:{gw.data_dir}/sandgate.db?mode=ro", uri=True)
    try:
        dump = "\n".join(db.iterdump())
        assert db.execute("SELECT count(*) FROM secrets").fetchone()[0] >= 3
    finally:
        db.close()
    texts = OUTPUTS + [dump]
    for needle in PLANTED + PLANTED_B64:
        for t in texts:
            assert needle not in t
        for b in blobs:
            assert needle.encode() not in b
