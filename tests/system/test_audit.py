"""The audit when the store will not take it: the database locked by another
process, the disk full, the writer stalled, the gateway killed.  Every allowed
call's record lands once the store recovers, in order; live calls (fail_closed)
are refused with 503 audit_unavailable while the audit is behind, sandbox calls
(fail_open) go on.  Also: the data directory's modes, and runs read back from
the store without blocking an I/O thread.

Waits poll the gateway's own figures (/metrics) against a deadline."""

import errno
import json
import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time

import pytest
import requests

from conftest import (BIN, EXAMPLES, Gateway, assert_problem, make_key, run_cli, wait_for)

# A small deadline, so that a held lock is noticed within a few calls.
CONFIG = """
audit:
  backlog_deadline: 300ms
sandbox:
  enabled: false
"""

EVENT = {"title": "Review", "starts_at": "2026-01-05T10:00:00Z", "ends_at": "2026-01-05T11:00:00Z"}
COST = 0.0001  # calendar.create_event, simulated in both modes


def metric(gw, name):
    m = re.search(r"^" + re.escape(name) + r" (\S+)$", gw.get("/metrics").text, re.M)
    assert m, f"{name} missing from /metrics"
    return float(m.group(1))


def prepare(tmp_path, name="data", config_text=CONFIG):
    """A data directory with the examples applied, a live and a sandbox key."""
    data = str(tmp_path / name)
    run_cli("apply", "-f", EXAMPLES, data_dir=data)
    keys = {"live": make_key(data, "admin", mode="live", user="ann")["key"],
            "sandbox": make_key(data, "admin", user="sandy")["key"]}
    config = str(tmp_path / "sandgate.yaml")
    with open(config, "w") as f:
        f.write(config_text)
    return data, keys, config


class Calls:
    """Every call made, in order: (trace id, mode, status)."""

    def __init__(self, gw, keys):
        self.gw, self.keys, self.made, self.last = gw, keys, [], None

    def __call__(self, mode):
        r = self.gw.post("calendar", "create_event", EVENT, key=self.keys[mode])
        self.made.append((r.headers["traceparent"].split("-")[1], mode, r.status_code))
        self.last = r
        return r

    def live_until(self, status, timeout=30):
        assert wait_for(lambda: self("live").status_code == status, timeout=timeout), \
            f"live calls never answered {status}; last: {self.last.status_code} {self.last.text}"
        return self.last

    def allowed_live(self):
        return sum(1 for _, mode, status in self.made if mode == "live" and status == 200)


def drained(gw, timeout=30):
    assert wait_for(lambda: metric(gw, "sandgate_record_backlog") == 0, timeout=timeout), \
        "the writer never caught up"


DECISIONS = "SELECT trace_id, mode, decision, code FROM decisions ORDER BY id"


def decisions(db_path):
    con = sqlite3.connect(db_path)
    try:
        return [tuple(r) for r in con.execute(DECISIONS).fetchall()]
    finally:
        con.close()


def assert_recorded_in_order(rows, calls):
    """Each call's decision is in the store once, in the order the calls were made."""
    made = {t for t, _, _ in calls.made}
    seen = [r for r in rows if r[0] in made]
    assert [r[0] for r in seen] == [t for t, _, _ in calls.made]
    for (trace, mode, status), (_, rmode, decision, code) in zip(calls.made, seen):
        assert rmode == mode
        if status == 200:
            assert (decision, code) == ("allowed", "ok"), trace
        else:
            assert (status, decision, code) == (503, "error", "audit_unavailable"), trace


def assert_fails_closed(gw, calls):
    """Live calls are refused once the backlog is past its deadline; sandbox calls go on."""
    body = assert_problem(calls.live_until(503), 503, "audit_unavailable")
    assert calls.last.headers["Retry-After"] == "1"
    assert "live calls are refused" in body["detail"]
    assert "Nothing was sent or charged" in body["remediation"]
    # A refused call spends none of the caller's limit: what remains never falls.
    # (RateLimit names the limit nearest its end, which may change between calls.)
    left = {}
    for _ in range(6):
        assert calls("live").status_code == 503
        name, rest = calls.last.headers["RateLimit"].split(";r=", 1)
        left.setdefault(name, []).append(int(rest.split(";")[0]))
    assert all(seq == sorted(seq) for seq in left.values()), left
    assert calls("sandbox").status_code == 200
    assert metric(gw, "sandgate_record_oldest_age_seconds") > 0.3
    assert metric(gw, "sandgate_record_backlog") > 0
    assert metric(gw, "sandgate_audit_refused_total") >= 1


def test_locked_store_fails_live_calls_closed_and_loses_nothing(tmp_path):
    data, keys, config = prepare(tmp_path)
    gw = Gateway(data, config=config).start()
    calls = Calls(gw, keys)
    try:
        for _ in range(3):
            assert calls("live").status_code == 200
        drained(gw)
        lock = sqlite3.connect(os.path.join(data, "sandgate.db"), isolation_level=None, timeout=10)
        lock.execute("BEGIN EXCLUSIVE")  # another writer holds the database
        try:
            assert_fails_closed(gw, calls)
            # The store refused the writer, which keeps retrying rather than dropping.
            assert wait_for(lambda: metric(gw, "sandgate_record_retries_total") >= 1, timeout=30)
        finally:
            lock.execute("COMMIT")
            lock.close()
        calls.live_until(200)  # service resumes once the backlog is written
        drained(gw)
        assert metric(gw, "sandgate_record_dropped_total") == 0
        assert metric(gw, "sandgate_audit_refused_total") == \
            sum(1 for _, _, status in calls.made if status == 503)
        assert_recorded_in_order(decisions(os.path.join(data, "sandgate.db")), calls)
        assert any("cannot write decisions to the store (database is locked)" in l.get("msg", "")
                   for l in gw.log_lines())
    finally:
        gw.assert_clean_exit(gw.stop())


class TmpfsGateway(Gateway):
    """A gateway whose data directory is a small tmpfs of its own: mounted in
    a private mount namespace (unshare -m), seeded from `seed`, then serving.
    The test reaches the mount through /proc/PID/root."""

    def __init__(self, mountpoint, seed, size, config):
        super().__init__(mountpoint, config=config)
        self.seed, self.size = seed, size

    def start(self):
        script = ('mount -t tmpfs -o size="$1",mode=0700 sandgate-audit "$2" && '
                  'cp -a "$3"/. "$2"/ && exec "$4" serve --listen "$5" --data-dir "$2" '
                  '--threads 2 --config "$6" --admin-listen "$7"')
        args = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", self.size,
                self.data_dir, self.seed, BIN, f"127.0.0.1:{self.port}", self.config,
                f"127.0.0.1:{self.admin_port}"]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        ok = wait_for(lambda: self.proc.poll() is None and self._ready(), timeout=30)
        assert ok, f"gateway did not become ready ({self.proc.poll()}):\n{self.log_text()}"
        return self

    def _ready(self):
        try:
            return requests.get(self.url + "/readyz", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def view(self, *parts):
        """A path inside the gateway's tmpfs, as this process can reach it."""
        return os.path.join(f"/proc/{self.proc.pid}/root{self.data_dir}", *parts)

    def decisions(self):
        """The decisions, read inside the gateway's mount namespace (SQLite resolves
        /proc/PID/root to this process's own root)."""
        script = ("import json, sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                  "print(json.dumps(c.execute(sys.argv[2]).fetchall()))")
        out = subprocess.run(["nsenter", "-t", str(self.proc.pid), "-m", sys.executable, "-c",
                              script, os.path.join(self.data_dir, "sandgate.db"), DECISIONS],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        return [tuple(r) for r in json.loads(out)]


def fill(path):
    """Writes until the file system says it is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    chunk = b"\0" * 65536
    try:
        while True:
            os.write(fd, chunk)
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    finally:
        os.close(fd)


def test_full_disk_fails_live_calls_closed_and_loses_nothing(tmp_path):
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("nsenter")):
        pytest.skip("needs root, unshare(1) and nsenter(1) to use a private tmpfs")
    seed, keys, config = prepare(tmp_path)
    mnt = str(tmp_path / "small")
    os.mkdir(mnt, 0o700)
    gw = TmpfsGateway(mnt, seed, "4m", config).start()
    calls = Calls(gw, keys)
    try:
        for _ in range(3):
            assert calls("live").status_code == 200
        drained(gw)
        fill(gw.view("filler"))
        assert_fails_closed(gw, calls)
        assert wait_for(lambda: metric(gw, "sandgate_record_retries_total") >= 1, timeout=30)
        os.unlink(gw.view("filler"))
        calls.live_until(200)
        drained(gw)
        assert metric(gw, "sandgate_record_dropped_total") == 0
        assert_recorded_in_order(gw.decisions(), calls)
        assert any("cannot write decisions to the store (database or disk is full)"
                   in l.get("msg", "") for l in gw.log_lines())
    finally:
        gw.assert_clean_exit(gw.stop())


def usage_spent(gw, key):
    money = gw.get("/v1/me/usage", key=key).json()["money"]
    line = [b for b in money["budgets"] if b["scope"] == "user" and b["period"] == "daily"]
    return line[0]["spent"]


def test_stalled_writer_fails_closed_and_acknowledged_spend_survives_a_kill(tmp_path, monkeypatch):
    """The writer stalls (test builds' SANDGATE_TEST_WRITER_STALL: while the file
    exists, it waits before each write, as on a hung disk, with no error to
    see): the age of the backlog alone refuses live calls.  Once it has caught
    up, SIGKILL: the restarted gateway's budgets count every acknowledged call."""
    data, keys, config = prepare(tmp_path)
    stall = str(tmp_path / "stall")
    monkeypatch.setenv("SANDGATE_TEST_WRITER_STALL", stall)
    gw = Gateway(data, config=config).start()
    calls = Calls(gw, keys)
    try:
        for _ in range(3):
            assert calls("live").status_code == 200
        drained(gw)
        open(stall, "w").close()
        assert_fails_closed(gw, calls)
        assert metric(gw, "sandgate_record_retries_total") == 0  # stalled, not failing
        os.unlink(stall)
        calls.live_until(200)
        drained(gw)
        assert metric(gw, "sandgate_record_dropped_total") == 0
    finally:
        if os.path.exists(stall):
            os.unlink(stall)
        gw.proc.kill()
        gw.proc.wait(timeout=30)
        gw.log.close()
    monkeypatch.delenv("SANDGATE_TEST_WRITER_STALL")
    assert_recorded_in_order(decisions(os.path.join(data, "sandgate.db")), calls)
    again = Gateway(data, config=config).start()
    try:
        want = round(calls.allowed_live() * COST, 6)
        assert round(usage_spent(again, keys["live"]), 6) == want
    finally:
        again.assert_clean_exit(again.stop())


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_data_directory_stays_private(tmp_path):
    old = os.umask(0o022)  # the common default, under which SQLite made 0644 files
    try:
        data = str(tmp_path / "data")
        os.mkdir(data)
        os.chmod(data, 0o755)
        run_cli("apply", "-f", EXAMPLES, data_dir=data)
        key = make_key(data, "admin", mode="live")["key"]
        gw = Gateway(data).start()
        try:
            assert gw.post("calendar", "create_event", EVENT, key=key).status_code == 200
            drained(gw)
            for name in ("sandgate.db", "sandgate.db-wal", "sandgate.db-shm", "sandgate.pid",
                         "server.key"):
                assert mode_of(os.path.join(data, name)) == 0o600, name
        finally:
            gw.assert_clean_exit(gw.stop())
        assert mode_of(data) == 0o755  # the operator's directory keeps its mode
        nested = str(tmp_path / "new" / "a" / "b")
        run_cli("apply", "-f", EXAMPLES, data_dir=nested)
        for d in (tmp_path / "new", tmp_path / "new" / "a", tmp_path / "new" / "a" / "b"):
            assert mode_of(d) == 0o700, d
        assert mode_of(os.path.join(nested, "sandgate.db")) == 0o600
    finally:
        os.umask(old)


@pytest.mark.parametrize("mode,who", [(0o775, "its group"), (0o757, "every user"),
                                      (0o1777, "every user")])
def test_writable_data_directory_is_refused(tmp_path, mode, who):
    data = str(tmp_path / "data")
    run_cli("apply", "-f", EXAMPLES, data_dir=data)
    os.chmod(data, mode)
    for args in (["serve", "--listen", "127.0.0.1:1"], ["apply", "-f", EXAMPLES]):
        p = run_cli(*args, data_dir=data, check=False)
        assert p.returncode != 0, p.stdout
        assert f"the data directory {data} can be written by {who} (mode {mode:04o})" in p.stderr
        assert f"run 'chmod go-w {data}'" in p.stderr


def test_stored_runs_are_read_off_the_io_thread(tmp_path):
    """A run only in the store is answered from it, and the lone I/O thread
    goes on serving while the read waits on a locked store.  (The reader
    thread opens its connection on its first read, and opening takes the
    write lock a moment to check the schema version: held here by another
    process, it keeps that first read waiting.)  The old registry read on
    the I/O thread, which then answered nothing else until the read ended."""
    data, keys, config = prepare(tmp_path, config_text="sandbox:\n  enabled: false\n")
    other = make_key(data, "admin", mode="live", user="gus", tenant="globex")["key"]
    db = os.path.join(data, "sandgate.db")
    docs = {f"run_00000000000{i}aa11223344556677": {"id": f"run_{i}", "status": "succeeded"}
            for i in range(2)}
    con = sqlite3.connect(db)
    with con:
        for rid, doc in docs.items():
            con.execute("INSERT INTO runs (id, tenant, user, template, status, started_us,"
                        " ended_us, doc) VALUES (?, 'acme', 'ann', 't', 'succeeded', 1, 2, ?)",
                        (rid, json.dumps(doc)))
    con.close()
    first, second = docs
    gw = Gateway(data, extra_args=["--threads", "1"], config=config).start()
    try:
        lock = sqlite3.connect(db, isolation_level=None, timeout=10)
        lock.execute("BEGIN EXCLUSIVE")
        got = {}
        t = threading.Thread(target=lambda: got.update(
            r=gw.get(f"/v1/runs/{first}", key=keys["live"])))
        t.start()
        try:
            # This scrape and the waiting read at once, on the lone I/O thread.
            parked = wait_for(lambda: metric(gw, "sandgate_in_flight_requests") >= 2, timeout=4)
            answered_early = not t.is_alive()
        finally:
            lock.execute("COMMIT")
            lock.close()
        t.join(timeout=30)
        assert parked and not answered_early
        assert got["r"].status_code == 200, got["r"].text
        assert got["r"].json() == docs[first]
        r = gw.get(f"/v1/runs/{second}", key=keys["live"])
        assert r.status_code == 200, r.text
        assert r.json() == docs[second]
        assert_problem(gw.get(f"/v1/runs/{first}", key=other), 404, "run_unknown")
        assert_problem(gw.get("/v1/runs/run_0123abcd", key=keys["live"]), 404, "run_unknown")
    finally:
        gw.assert_clean_exit(gw.stop())
