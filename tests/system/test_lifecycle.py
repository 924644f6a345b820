"""Reload, drain, apply and the command line, against real processes."""

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time

import requests

from conftest import (BIN, EXAMPLES, CONTACT_MIN, Gateway, assert_problem, free_port, make_key,
                      run_cli, wait_for)

MAIL = {"to": ["a@example.com"], "subject": "hello", "body": "hi"}


def copy_examples(tmp_path):
    dst = tmp_path / "defs"
    shutil.copytree(EXAMPLES, dst)
    return dst


def doc_count(data_dir):
    con = sqlite3.connect(os.path.join(data_dir, "sandgate.db"))
    try:
        return con.execute("SELECT count(*), coalesce(max(version), 0) FROM documents").fetchone()
    finally:
        con.close()


class LoadLoop:
    """Background clients on keep-alive sessions; records every outcome."""

    def __init__(self, gw, key, threads=2, allowed=(200, 429)):
        self.gw, self.key, self.allowed = gw, key, allowed
        self.stop_flag = threading.Event()
        self.outcomes = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self):
        s = requests.Session()
        while not self.stop_flag.is_set():
            try:
                # Background work is refused at once rather than queued, so
                # the loop keeps up its pace whatever the limits are.
                r = self.gw.post("crm", "create_contact", CONTACT_MIN, key=self.key, session=s,
                                 headers={"Sandgate-Priority": "background"})
                out = r.status_code
            except requests.RequestException as e:
                out = f"error: {e.__class__.__name__}"
            with self.lock:
                self.outcomes.append(out)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=10)

    def wait_for_calls(self, n, timeout=30):
        """Returns once n more calls have been answered (or failed): the load
        is flowing, which a sleep could only hope for."""
        with self.lock:
            target = len(self.outcomes) + n
        assert wait_for(lambda: len(self.outcomes) >= target, timeout=timeout), (
            f"the load made {len(self.outcomes)} calls, not {target}")

    def failures(self):
        return [o for o in self.outcomes if o not in self.allowed]


def test_sighup_changes_decisions_with_zero_failed_requests(tmp_path):
    defs = copy_examples(tmp_path)
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    maker = make_key(data, "maker")["key"]
    explorer = make_key(data, "explorer")["key"]
    gw = Gateway(data).start()
    try:
        assert gw.post("mail", "send", MAIL, key=explorer).status_code == 200
        roles = defs / "policies" / "roles.yaml"
        original = roles.read_text()
        changed = original.replace('"mail.send"', '"crm.get_contact"', 1)
        assert changed != original, "roles.yaml must grant mail.send as a quoted pattern"
        with LoadLoop(gw, maker) as load:
            load.wait_for_calls(20)
            # Stored but not live until the gateway reloads.
            roles.write_text(changed)
            run_cli("apply", "-f", str(defs), "--no-reload", data_dir=data)
            assert gw.post("mail", "send", MAIL, key=explorer).status_code == 200
            # Signals that arrive together are delivered once: send each
            # only after the gateway logged the reload before it, with the
            # load seen flowing in between.
            reloads = lambda: len(re.findall(r'"generation":(\d+)', gw.log_text()))
            for _ in range(5):
                before = reloads()
                gw.signal(signal.SIGHUP)
                assert wait_for(lambda: reloads() > before, timeout=10)
                load.wait_for_calls(5)
            assert wait_for(lambda: gw.post("mail", "send", MAIL, key=explorer).status_code == 403)
            # apply without --no-reload tells the gateway itself.
            roles.write_text(original)
            out = run_cli("apply", "-f", str(defs), data_dir=data)
            assert "told to reload" in out.stdout
            assert wait_for(lambda: gw.post("mail", "send", MAIL, key=explorer).status_code == 200)
            load.wait_for_calls(20)
        assert len(load.outcomes) > 50
        assert load.failures() == [], load.failures()[:10]
        assert 200 in load.outcomes
        gens = re.findall(r'"generation":(\d+)', gw.log_text())
        assert len(gens) >= 6
    finally:
        gw.assert_clean_exit(gw.stop())


def partial_request(port, key, body):
    """Sends the headers and half the body, and returns the socket and the rest."""
    s = socket.create_connection(("127.0.0.1", port))
    head = (f"POST /v1/connectors/crm/create_contact HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    s.sendall(head + body[: len(body) // 2])
    return s, body[len(body) // 2:]


def test_sigterm_drains_in_flight_requests(tmp_path):
    data = str(tmp_path / "data")
    run_cli("apply", "-f", EXAMPLES, data_dir=data)
    maker = make_key(data, "maker")["key"]
    gw = Gateway(data).start()
    body = json.dumps(CONTACT_MIN).encode()
    sock, rest = partial_request(gw.port, maker, body)
    keepalive = requests.Session()
    assert gw.get("/readyz").status_code == 200
    assert keepalive.get(gw.url + "/healthz", timeout=5).status_code == 200
    # During the drain new connections are refused, so those errors are allowed here;
    # a 5xx or a reset of an accepted request is not.
    with LoadLoop(gw, maker, allowed=(200, 429, "error: ConnectionError")) as load:
        load.wait_for_calls(20)
        gw.signal(signal.SIGTERM)
        # The rest of the body goes once the gateway is draining.
        assert wait_for(lambda: "draining" in gw.log_text(), timeout=10)
        sock.sendall(rest)
        reply = sock.recv(65536).decode()
        r = keepalive.get(gw.url + "/readyz", timeout=5)
    assert reply.startswith("HTTP/1.1 200"), reply
    assert "Connection: close" in reply
    assert r.status_code == 503 and r.json()["checks"]["accepting"]["ok"] is False
    rc = gw.proc.wait(timeout=15)
    gw.log.close()
    gw.assert_clean_exit(rc)
    assert load.failures() == [], load.failures()[:10]
    assert load.outcomes.count(200) > 0
    assert "draining" in gw.log_text()


def test_apply_of_broken_file_changes_nothing_and_names_the_line(tmp_path):
    defs = copy_examples(tmp_path)
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    before = doc_count(data)

    roles = defs / "policies" / "roles.yaml"
    text = roles.read_text()
    assert '"crm.*"' in text
    roles.write_text(text.replace('"crm.*"', '"crmm.*"', 1))
    line_no = next(i for i, l in enumerate(roles.read_text().splitlines(), 1) if "crmm" in l)
    # A valid change elsewhere in the same apply must not land either.
    crm = defs / "connectors" / "crm.yaml"
    crm.write_text(crm.read_text().replace("version: 1.0.0", "version: 1.0.1"))

    p = run_cli("apply", "-f", str(defs), data_dir=data, check=False)
    assert p.returncode != 0
    assert re.search(rf"roles\.yaml:{line_no}:\d+: .*crmm", p.stderr), p.stderr
    assert 'did you mean "crm"' in p.stderr
    assert "nothing was applied" in p.stderr
    assert doc_count(data) == before


def test_apply_reports_every_error_in_one_pass(tmp_path):
    defs = copy_examples(tmp_path)
    data = str(tmp_path / "data")
    crm = defs / "connectors" / "crm.yaml"
    crm.write_text(crm.read_text().replace("method: POST", "method: POTS", 1)
                   .replace("operations:", "opertions:", 1))
    p = run_cli("apply", "-f", str(defs), data_dir=data, check=False)
    assert p.returncode != 0
    errors = [l for l in p.stderr.splitlines() if re.match(r".*crm\.yaml:\d+:\d+: ", l)]
    assert len(errors) >= 2, p.stderr
    assert 'did you mean "operations"' in p.stderr


def test_apply_is_idempotent(tmp_path):
    data = str(tmp_path / "data")
    first = json.loads(run_cli("apply", "-f", EXAMPLES, "--json", data_dir=data).stdout)
    assert {d["result"] for d in first["documents"]} == {"created"}
    second = json.loads(run_cli("apply", "-f", EXAMPLES, "--json", data_dir=data).stdout)
    assert {d["result"] for d in second["documents"]} == {"unchanged"}


def test_bad_config_refuses_to_start_and_names_the_line(tmp_path):
    cfg = tmp_path / "sandgate.yaml"
    cfg.write_text("threads: 2\nlimits:\n  max_body_bytez: 10\n")
    p = subprocess.run([BIN, "serve", "--config", str(cfg), "--data-dir", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert re.search(r"sandgate\.yaml:3:3: .*max_body_bytez", p.stderr), p.stderr
    assert 'did you mean "max_body_bytes"' in p.stderr


def test_port_in_use_is_a_clear_error(tmp_path):
    data = str(tmp_path / "data")
    run_cli("apply", "-f", EXAMPLES, data_dir=data)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        p = subprocess.run([BIN, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data],
                           capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "cannot listen" in p.stderr and "--listen" in p.stderr


def test_cli_help_and_errors(tmp_path):
    for cmd in (["serve"], ["apply"], ["keys"], ["keys", "create"]):
        p = subprocess.run([BIN, *cmd, "--help"], capture_output=True, text=True, timeout=10)
        assert p.returncode == 0 and "usage:" in p.stdout, (cmd, p.stdout, p.stderr)
    assert subprocess.run([BIN, "bogus"], capture_output=True, timeout=10).returncode != 0
    assert subprocess.run([BIN, "apply"], capture_output=True, timeout=10).returncode != 0
    v = subprocess.run([BIN, "version"], capture_output=True, text=True, timeout=10)
    assert v.returncode == 0 and v.stdout.startswith("sandgate ")
    data = str(tmp_path / "data")
    run_cli("apply", "-f", EXAMPLES, data_dir=data)
    k = make_key(data, "explorer")
    assert k["key"].startswith("sgk_") and k["role"] == "explorer" and k["mode"] == "sandbox"
    listed = json.loads(run_cli("keys", "list", "--json", data_dir=data).stdout)
    assert [x["id"] for x in listed] == [k["id"]] and "key" not in listed[0]
    p = run_cli("keys", "create", "--tenant", "t", "--user", "u", "--role", "explorr",
                data_dir=data, check=False)
    assert p.returncode != 0 and 'did you mean "explorer"' in p.stderr
    p = run_cli("keys", "revoke", "0000000000000000", data_dir=data, check=False)
    assert p.returncode != 0 and "no active key" in p.stderr
    p = run_cli("keys", "create", "--tenant", "t", "--user", "u", "--role", "explorer",
                "--mode", "prod", data_dir=data, check=False)
    assert p.returncode != 0 and "sandbox or live" in p.stderr


def test_demo_first_start_prints_working_keys(tmp_path):
    data = str(tmp_path / "demo")
    port = free_port()
    proc = subprocess.Popen([BIN, "serve", "--demo", "--data-dir", data, "--listen",
                             f"127.0.0.1:{port}"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "refused at once instead" in line:
                break
        text = "".join(lines)
        keys = dict(re.findall(r"^\s+(explorer|maker|admin)\s+\(\w+\)\s+(sgk_\S+)$", text, re.M))
        assert set(keys) == {"explorer", "maker", "admin"}, text
        assert "curl" in text and keys["explorer"] in text
        url = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: _ready(url), timeout=20)
        r = requests.post(url + "/v1/connectors/crm/create_contact", json=CONTACT_MIN,
                          headers={"Authorization": "Bearer " + keys["explorer"]}, timeout=5)
        assert r.status_code == 200, r.text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def _ready(url):
    try:
        return requests.get(url + "/readyz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


# Says which signals it got, in order.  The kernel delivers pending signals
# lowest number first and Python runs their handlers in that order, so a
# SIGHUP sent before our SIGUSR1 is always reported before it.
BYSTANDER = r"""
import signal
signal.signal(signal.SIGHUP, lambda *a: print("HUP", flush=True))
signal.signal(signal.SIGUSR1, lambda *a: print("USR1", flush=True))
print("ready", flush=True)
while True:
    signal.pause()
"""


def test_apply_never_signals_a_stale_pid(tmp_path):
    """A pid file left by a crashed gateway may name an unrelated process now."""
    import sys

    data = tmp_path / "data"
    run_cli("apply", "-f", EXAMPLES, data_dir=str(data))
    bystander = subprocess.Popen([sys.executable, "-c", BYSTANDER], stdout=subprocess.PIPE,
                                 text=True)
    try:
        assert bystander.stdout.readline() == "ready\n"
        (data / "sandgate.pid").write_text(f"{bystander.pid}\n")
        defs = copy_examples(tmp_path)
        crm = defs / "connectors" / "crm.yaml"
        crm.write_text(crm.read_text().replace("version: 1.0.0", "version: 1.0.1"))
        out = run_cli("apply", "-f", str(defs), data_dir=str(data))
        assert "told to reload" not in out.stdout
        # Anything apply sent has reached the bystander before this does.
        bystander.send_signal(signal.SIGUSR1)
        assert bystander.stdout.readline() == "USR1\n", "apply sent SIGHUP to an unrelated process"
    finally:
        bystander.kill()
        bystander.wait()


def test_config_file_limits_and_timeouts_apply(tmp_path):
    """sandgate.yaml reaches the running server: body size, depth and the read timeout."""
    data = str(tmp_path / "data")
    run_cli("apply", "-f", EXAMPLES, data_dir=data)
    key = make_key(data, "admin", user="cfg")["key"]
    cfg = tmp_path / "sandgate.yaml"
    cfg.write_text("limits:\n  max_body_bytes: 2048\n  max_json_depth: 4\n"
                   "  read_timeout: 1s\n  idle_timeout: 2s\nlog:\n  requests: false\n")
    gw = Gateway(data, config=str(cfg)).start()
    try:
        ok = {"email": "a@example.com", "name": "x" * 100}
        assert gw.post("crm", "create_contact", ok, key=key).status_code == 200
        body = assert_problem(gw.post("crm", "create_contact", {"email": "a@example.com",
                                                                 "name": "x" * 3000}, key=key),
                              413, "body_too_large")
        assert "2048" in body["detail"]
        deep = '{"email":"a@example.com","name":"n","company":' + "[" * 5 + "]" * 5 + "}"
        assert_problem(gw.post("crm", "create_contact", raw=deep, key=key), 400,
                       "nested_too_deeply")
        # A connection that never sends a request is closed after read_timeout.
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.settimeout(10)
        started = time.monotonic()
        assert s.recv(1) == b""
        assert time.monotonic() - started < 8
        s.close()
        assert not [l for l in gw.log_lines() if l.get("msg") == "request"]
    finally:
        gw.assert_clean_exit(gw.stop())
