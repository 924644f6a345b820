"""System-test harness: the real sandgate binary, on a free loopback port,
with a fresh data directory per test module, and for each test its own keys
in its own tenant.  Nothing is mocked."""

import copy
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SANDGATE_BIN", os.path.join(ROOT, "build", "sandgate"))
EXAMPLES = os.path.join(ROOT, "examples")


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_EPHEMERAL_LOW = _ephemeral_low()
_port_rng = random.Random(os.getpid() ^ time.time_ns())
_handed = set()  # never the same port twice in one test run


def free_port():
    """A free loopback port below the ephemeral range.  A port the kernel
    picks for bind(("127.0.0.1", 0)) comes from the range outgoing
    connections use too, so a client socket could take it before the
    gateway binds it ("Address already in use")."""
    low, high = 10000, max(10001, _EPHEMERAL_LOW - 1)
    for _ in range(200):
        port = _port_rng.randrange(low, high)
        if port in _handed:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            _handed.add(port)
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args, data_dir=None, check=True, timeout=60):
    cmd = [BIN, *args]
    if data_dir is not None:
        cmd += ["--data-dir", data_dir]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


# Served on the admin listener, with their details; the public one has a bare /readyz.
OPERATOR_PATHS = ("/metrics", "/readyz")


class Gateway:
    """One sandgate process.  stderr (the JSON log) is kept in a file.  Its
    admin listener (/metrics, the detailed /readyz) is at admin_url.
    `popen` holds extra subprocess.Popen arguments (e.g. preexec_fn)."""

    def __init__(self, data_dir, extra_args=(), config=None, popen=None):
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_port = free_port()
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self.log_path = os.path.join(data_dir, "..", f"gateway-{self.port}.log")
        self.extra_args = list(extra_args)
        self.config = config
        self.popen = dict(popen or {})
        self.proc = None

    def start(self):
        args = [BIN, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir,
                "--threads", "2", "--admin-listen", f"127.0.0.1:{self.admin_port}",
                *self.extra_args]
        if self.config:
            args += ["--config", self.config]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     **self.popen)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited early ({self.proc.returncode}):\n{self.log_text()}")
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise AssertionError("gateway did not become ready:\n" + self.log_text())

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def log_lines(self):
        out = []
        for line in self.log_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30):
        """SIGTERM and insist on a clean exit: status 0 and no sanitizer report."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        self.log.close()
        return rc

    def assert_clean_exit(self, rc):
        text = self.log_text()
        assert "ERROR: AddressSanitizer" not in text, text[-4000:]
        assert "runtime error:" not in text, text[-4000:]
        assert "LeakSanitizer" not in text, text[-4000:]
        assert rc == 0, f"exit status {rc}\n{text[-4000:]}"

    def post(self, connector, op, body=None, key=None, headers=None, raw=None, session=None):
        h = {"Content-Type": "application/json"}
        if key:
            h["Authorization"] = "Bearer " + key
        h.update(headers or {})
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return (session or requests).post(f"{self.url}/v1/connectors/{connector}/{op}",
                                          data=data, headers=h, timeout=10)

    def get(self, path, key=None, admin=None, **kw):
        """GET on the public listener; /metrics and /readyz go to the admin
        listener, where their details are, unless admin=False."""
        if admin is None:
            admin = path.split("?")[0] in OPERATOR_PATHS
        h = {"Authorization": "Bearer " + key} if key else {}
        return requests.get((self.admin_url if admin else self.url) + path, headers=h,
                            timeout=10, **kw)

    def admin_get(self, path, **kw):
        return requests.get(self.admin_url + path, timeout=10, **kw)


def make_key(data_dir, role, mode="sandbox", user=None, ttl=None, tenant="acme"):
    args = ["keys", "create", "--tenant", tenant, "--user", user or f"{role}-user", "--role", role,
            "--mode", mode, "--json"]
    if ttl:
        args += ["--ttl", ttl]
    out = run_cli(*args, data_dir=data_dir)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def workdir():
    d = tempfile.mkdtemp(prefix="sandgate-test-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


# What each name in a test's gateway.keys is: (role, mode, user).
KEY_ROLES = {
    "explorer": ("explorer", "sandbox", "explorer-user"),
    "maker": ("maker", "sandbox", "maker-user"),
    "admin": ("admin", "live", "admin-user"),
    # The admin's sandbox limits are high enough for tests that call often.
    "power": ("admin", "sandbox", "power-user"),
    "explorer_live": ("explorer", "live", "live-explorer"),
}

_tenants = itertools.count(1)


class RoleKeys(dict):
    """A test's own keys, all in the test's own tenant: each is made the first
    time the test asks for it, so no test spends another's limits (per key or
    per tenant) and none depends on the order tests run in."""

    def __init__(self, gw, tenant):
        super().__init__()
        self.gw, self.tenant = gw, tenant

    def __missing__(self, name):
        role, mode, user = KEY_ROLES[name]
        self[name] = fresh_key(self.gw, role, mode=mode, tenant=self.tenant, user=user)["key"]
        return self[name]


def _start_examples_gateway(workdir, request):
    data = os.path.join(workdir, "data")
    run_cli("apply", "-f", EXAMPLES, data_dir=data)
    config = None
    text = getattr(request.module, "GATEWAY_CONFIG", None)
    if text:
        config = os.path.join(workdir, "sandgate.yaml")
        with open(config, "w") as f:
            f.write(text)
    return Gateway(data, config=config).start()


@pytest.fixture(scope="module")
def gateway_process(workdir, request):
    """One gateway process per test module, with the examples applied.  A test
    module may set GATEWAY_CONFIG to the text of a sandgate.yaml.  Tests use
    it through `gateway`, which gives each test its own keys and tenant."""
    gw = _start_examples_gateway(workdir, request)
    yield gw
    gw.assert_clean_exit(gw.stop())


@pytest.fixture
def gateway(gateway_process):
    """The module's gateway as one test sees it: gateway.keys[NAME] (see
    KEY_ROLES) are this test's own keys, made on first use, in this test's
    own tenant (gateway.tenant).  The process is shared: a test that must
    stop, restart or signal it uses own_gateway instead."""
    gw = copy.copy(gateway_process)
    gw.tenant = f"acme-{next(_tenants)}"
    gw.keys = RoleKeys(gw, gw.tenant)
    return gw


@pytest.fixture
def own_gateway(tmp_path, request):
    """A gateway of this test alone, set up as `gateway` is, with its keys
    made on first use in tenant "acme"."""
    gw = _start_examples_gateway(str(tmp_path), request)
    gw.tenant = "acme"
    gw.keys = RoleKeys(gw, gw.tenant)
    yield gw
    gw.assert_clean_exit(gw.stop())


def assert_problem(resp, status, code):
    """Every error is RFC 9457 problem+json with our extension members."""
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.headers
    body = resp.json()
    assert body["status"] == status
    assert body["code"] == code, body
    for member in ("type", "title", "detail", "remediation", "trace_id"):
        assert isinstance(body.get(member), str) and body[member], (member, body)
    assert len(body["trace_id"]) == 32
    assert body["trace_id"] in resp.headers["traceparent"]
    return body


def wait_for(predicate, timeout=5.0, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def alive(pid):
    """A live process (not a zombie) with this pid: the tests share the
    gateway's pid namespace, so a worker_pid is a pid here too."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def fresh_key(gw, role, mode="sandbox", ttl=None, tenant=None, user=None):
    """A new key, once the running gateway has picked it up (it polls the store).
    The tenant defaults to the test's own (gateway.tenant), else "acme"."""
    tenant = tenant or getattr(gw, "tenant", "acme")
    before = metric(gw, "sandgate_snapshot_generation")
    info = make_key(gw.data_dir, role, mode=mode, ttl=ttl, tenant=tenant,
                    user=user or f"{role}-{time.monotonic_ns()}")
    # The gateway notices the store's new revision (it polls every 500 ms)
    # and publishes a new snapshot with the key.  Asking with the key until
    # it works would count as requests without a valid key, which the
    # gateway limits per client address, to the cost of the tests after.
    assert wait_for(lambda: metric(gw, "sandgate_snapshot_generation") > before, timeout=10), (
        "gateway did not pick up the new key")
    return info


CONTACT_MIN = {"email": "ada@example.com", "name": "Ada"}


def audit(data_dir, where="1", params=(), until=lambda rows: True, timeout=10.0):
    """The audit record's decisions matching `where` (SQL over the decisions
    table), oldest first, as dicts, once `until(rows)` holds.  The writer
    thread records in batches, so a test polls for the rows it waits for."""
    db = os.path.join(data_dir, "sandgate.db")
    rows = []

    def read():
        nonlocal rows
        con = sqlite3.connect(db, timeout=5)
        con.row_factory = sqlite3.Row
        try:
            rows = [dict(r) for r in con.execute(
                f"SELECT * FROM decisions WHERE {where} ORDER BY id", params)]
        finally:
            con.close()
        return until(rows)
    assert wait_for(read, timeout=timeout, interval=0.05), (
        f"the audit record did not reach the expected state within {timeout} s: "
        f"{len(rows)} rows where {where} {params}")
    return rows


def arrival_us(row):
    """When the gateway received a recorded call, in unix microseconds: the
    record's time less the gateway's own receipt-to-reply latency."""
    return row["ts_us"] - row["latency_us"]


def metric(gw, name):
    """One sample of the gateway's /metrics, e.g. 'sandgate_queued_total' or
    'sandgate_shed_total{class="normal"}'; None when absent."""
    m = re.search(r"^" + re.escape(name) + r" (\S+)$", gw.get("/metrics").text, re.M)
    return float(m.group(1)) if m else None
