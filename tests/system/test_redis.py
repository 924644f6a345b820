"""throttle.backend: redis against a real redis-server: two gateways sharing
one limit, and every failure mode when Redis dies and comes back."""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from conftest import (EXAMPLES, Gateway, arrival_us, assert_problem, audit, free_port, make_key,
                      metric, run_cli, wait_for)

REDIS = "/usr/bin/redis-server"
CONTACT = {"email": "ada@example.com", "name": "Ada"}

POLICY = """\
kind: policy
name: test
roles:
  dev:
    allow: [{ operations: ["*"], modes: [sandbox] }]
    limits: { sandbox: { rate: 100000/s, burst: 100000 } }
rules:
  - { name: shared, bucket_per: [tenant], windows: [{ rate: %s, burst: %d }] }
"""


class Redis:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.proc = None

    def start(self):
        assert os.path.exists(REDIS), "redis-server is missing: scripts/install-deps installs it"
        self.proc = subprocess.Popen([REDIS, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import socket
        def up():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False
        assert wait_for(up, timeout=10), "redis-server did not start"
        return self

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def redis():
    r = Redis().start()
    yield r
    r.kill()


def prepare(tmp_path, redis, rate, burst, failure_mode="local", nodes=1, name="data",
            timeout="50ms"):
    defs = tmp_path / ("defs-" + name)
    shutil.copytree(os.path.join(EXAMPLES, "connectors"), defs / "connectors")
    (defs / "policies").mkdir()
    (defs / "policies" / "test.yaml").write_text(POLICY % (rate, burst))
    data = str(tmp_path / name)
    run_cli("apply", "-f", str(defs), data_dir=data)
    config = tmp_path / (name + ".yaml")
    config.write_text(f"throttle:\n  backend: redis\n  queue_wait: 0s\nredis:\n"
                      f"  port: {redis.port}\n  failure_mode: {failure_mode}\n  nodes: {nodes}\n"
                      f"  timeout: {timeout}\n")
    return data, str(config)


def redis_ok(gw):
    return gw.get("/readyz").json()["checks"]["throttle_store"]["ok"]


FLOOD = r"""
import json, sys, threading, time, requests
url, key, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
body = json.dumps({"email": "ada@example.com", "name": "Ada"})
out, lock = [], threading.Lock()
def run():
    s = requests.Session()
    h = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        code = s.post(url + "/v1/connectors/crm/create_contact", data=body, headers=h).status_code
        with lock:
            out.append(code)
ts = [threading.Thread(target=run) for _ in range(3)]
[t.start() for t in ts]
[t.join() for t in ts]
print(json.dumps(out))
"""


def test_two_gateways_share_one_limit_within_two_percent(tmp_path, redis):
    """Two gateways, each with its own data directory (and so its own keys
    and audit record), serving the same tenant: only Redis links them.
    Together they admit b + r*t over the span t between the first and last
    admission, on Redis's clock, which decides.  The span is bracketed from
    the gateways' audit records: a call reached Redis after the gateway
    received it and before the gateway recorded it (ts_us - latency_us to
    ts_us, a few ms).  No more than that is ever admitted (+1 for a unit's
    boundary); no fewer than 2% below, since a unit freed while every
    client stalled may go unclaimed.  (The window once came from the
    clients' clocks, which stalled and started apart.)

    Redis is given 5 s to answer, and a gateway it does not answer refuses
    (failure_mode: deny): with the default 50 ms a loaded machine tripped
    the local fallback, which rightly admits from each gateway's own quota
    and so is no test of sharing; a refusal would show as a 503."""
    rate, burst = 100, 20
    nodes = [prepare(tmp_path, redis, f"{rate}/s", burst, failure_mode="deny", name=f"node{i}",
                     timeout="5s") for i in range(2)]
    keys = [make_key(data, "dev", user=f"u{i}")["key"] for i, (data, _) in enumerate(nodes)]
    gws = [Gateway(data, config=config).start() for data, config in nodes]
    try:
        assert wait_for(lambda: all(redis_ok(g) for g in gws))
        floods = [subprocess.Popen([sys.executable, "-c", FLOOD, g.url, k, "6"],
                                   stdout=subprocess.PIPE, text=True) for g, k in zip(gws, keys)]
        codes = [json.loads(f.communicate(timeout=60)[0]) for f in floods]
    finally:
        for g in gws:
            g.assert_clean_exit(g.stop())
    rows = [r for (data, _), c in zip(nodes, codes)
            for r in audit(data, "tenant = 'acme'", until=lambda rows, c=c: len(rows) == len(c))]
    assert {r["status"] for r in rows} == {200, 429}
    admitted = [r for r in rows if r["status"] == 200]
    assert len(rows) > 2 * len(admitted), "the clients must ask for far more than the limit"
    first_lo = min(arrival_us(r) for r in admitted)
    first_hi = min(r["ts_us"] for r in admitted)
    last_lo = max(arrival_us(r) for r in admitted)
    last_hi = max(r["ts_us"] for r in admitted)
    most = burst + rate * (last_hi - first_lo) / 1e6
    least = burst + rate * (last_lo - first_hi) / 1e6
    print(f"two gateways: admitted {len(admitted)} of {len(rows)}; b + r*t between "
          f"{least:.1f} and {most:.1f}")
    assert 0.98 * least <= len(admitted) <= most + 1, (len(admitted), least, most)


@pytest.mark.parametrize("mode", ["local", "deny", "allow"])
def test_redis_killed_then_back(tmp_path, redis, mode):
    data, config = prepare(tmp_path, redis, "1/h", 4, failure_mode=mode, nodes=2)
    key = make_key(data, "dev")["key"]
    gw = Gateway(data, config=config).start()
    try:
        assert wait_for(lambda: redis_ok(gw))
        shared = [gw.post("crm", "create_contact", CONTACT, key=key).status_code for _ in range(5)]
        assert shared == [200] * 4 + [429]
        redis.kill()
        assert wait_for(lambda: not redis_ok(gw))
        ready = gw.get("/readyz")
        assert ready.status_code == 200  # degraded, still serving
        codes = [gw.post("crm", "create_contact", CONTACT, key=key).status_code for _ in range(4)]
        if mode == "local":
            assert codes == [200, 200, 429, 429]  # this node's share: half the burst
        elif mode == "deny":
            assert codes == [503] * 4
            body = assert_problem(gw.post("crm", "create_contact", CONTACT, key=key), 503,
                                  "capacity")
            assert "rate-limit store is unreachable" in body["detail"]
        else:
            assert codes == [200] * 4
        assert f'sandgate_redis_fallback_total{{mode="{mode}"}}' in gw.get("/metrics").text
        # Back (a new, empty Redis on the same port): shared decisions resume.
        redis.start()
        assert wait_for(lambda: redis_ok(gw), timeout=10)
        assert gw.post("crm", "create_contact", CONTACT, key=key).status_code == 200
        log = gw.log_text()
        assert "Redis is unreachable" in log and "limits are shared between gateways" in log
    finally:
        gw.assert_clean_exit(gw.stop())


def test_calls_over_a_shared_limit_wait_their_turn(tmp_path, redis):
    # One call every 2 s and a 3 s wait, so the four calls have a second to
    # arrive: one is admitted at once, one after asking Redis again at its
    # turn, and the other two would need 4 s.
    import concurrent.futures

    data, config = prepare(tmp_path, redis, "30/m", 1)
    with open(config) as f:
        text = f.read().replace("queue_wait: 0s", "queue_wait: 3s")
    with open(config, "w") as f:
        f.write(text)
    key = make_key(data, "dev")["key"]
    gw = Gateway(data, config=config, extra_args=["--threads", "1"]).start()
    try:
        assert wait_for(lambda: redis_ok(gw))
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(gw.post, "crm", "create_contact", CONTACT, key=key)
                       for _ in range(4)]
            results = [f.result() for f in futures]
        assert sorted(r.status_code for r in results) == [200, 200, 429, 429], [
            r.text for r in results]
        for r in results:
            if r.status_code == 429:
                assert r.json()["detail"].startswith("after waiting "), r.text
        assert metric(gw, "sandgate_queued_total") == 3
        # On the gateway's clock: the first was never queued, and the turn
        # was recorded no sooner than 2 s after the first arrived (Redis
        # decided the first after its arrival, and the turn before the
        # gateway recorded it).  Its queue wait starts when Redis's first
        # refusal came back, not at its arrival, so arrival plus wait is not
        # when Redis admitted it, as it is with the local backend.
        rows = audit(data, "tenant = 'acme'", until=lambda rows: len(rows) == 4)
        [first] = [r for r in rows if r["queue_wait_us"] == 0]
        [turn] = [r for r in rows if r["status"] == 200 and r["queue_wait_us"] > 0]
        assert first["status"] == 200
        assert turn["ts_us"] - arrival_us(first) >= 2_000_000 - 2000
        assert all(r["queue_wait_us"] > 0 for r in rows if r["status"] == 429), rows
    finally:
        gw.assert_clean_exit(gw.stop())
