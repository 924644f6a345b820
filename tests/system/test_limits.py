"""The throttling engine against the real binary: several windows on one rule,
weighted costs, shared buckets, shadow rules, workload classes, upstream
limits and the way each refusal explains itself."""

import os
import shutil
import sqlite3
import time

import pytest

from conftest import EXAMPLES, Gateway, assert_problem, make_key, run_cli, wait_for

CONTACT = {"email": "ada@example.com", "name": "Ada"}

ROLES = """\
kind: policy
name: test
roles:
  dev:
    allow: [{ operations: ["*"], modes: [sandbox, live] }]
    limits:
      sandbox: { rate: 1000/s, burst: 1000 }
      live: { rate: 1000/s, burst: 1000 }
  lead:
    allow: [{ operations: ["*"], modes: [sandbox] }]
    limits: { sandbox: { rate: 1000/s, burst: 1000 } }
    priority: { default: normal, max: critical }
"""


@pytest.fixture
def start(tmp_path):
    """start(rules_yaml) -> a running gateway whose policy is ROLES plus those rules."""
    started = []

    def _start(rules):
        defs = tmp_path / "defs"
        shutil.copytree(os.path.join(EXAMPLES, "connectors"), defs / "connectors")
        (defs / "policies").mkdir()
        (defs / "policies" / "test.yaml").write_text(ROLES + rules)
        data = str(tmp_path / "data")
        run_cli("apply", "-f", str(defs), data_dir=data)
        gw = Gateway(data).start()
        started.append(gw)
        def key(role="dev", **kw):
            k = make_key(data, role, **kw)["key"]
            known = lambda: gw.get("/v1/me/usage", key=k).status_code == 200
            assert wait_for(known), "gateway did not pick up the new key"
            return k

        gw.key = key
        return gw

    yield _start
    for gw in started:
        gw.assert_clean_exit(gw.stop())


def hammer(gw, key, seconds, op="create_contact", body=CONTACT, headers=None):
    """Calls as fast as one client can for `seconds`; returns the admitted count."""
    import requests

    admitted = 0
    with requests.Session() as s:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            r = gw.post("crm", op, body, key=key, session=s, headers=headers)
            assert r.status_code in (200, 429), r.text
            admitted += r.status_code == 200
    return admitted


def test_one_rule_with_two_windows_admits_exactly_b_plus_rt(start):
    # Short window: 3 + 10/s.  Long window: 12 + 4/s.  They cross at t = 1.5 s,
    # so for 1 s the short one binds and by 4 s the long one does.
    gw = start("""
rules:
  - name: two-windows
    bucket_per: [api_key]
    windows: [{ rate: 10/s, burst: 3 }, { rate: 4/s, burst: 12 }]
""")
    key = gw.key()
    first = hammer(gw, key, 1.0)
    assert abs(first - (3 + 10)) <= 1, first
    rest = hammer(gw, key, 3.0)
    assert abs(first + rest - (12 + 4 * 4)) <= 1, (first, rest)


def test_weighted_cost_spends_units(start):
    # list_contacts weighs 2 units: 6 + 10/s units over 1 s is 8 calls.
    gw = start("""
rules:
  - name: units
    bucket_per: [api_key]
    windows: [{ rate: 10/s, burst: 6 }]
""")
    n = hammer(gw, gw.key(), 1.0, op="list_contacts", body={})
    assert abs(n - 8) <= 1, n


def test_tenant_bucket_is_shared_and_refusal_names_the_policy(start):
    gw = start("""
rules:
  - name: per-tenant
    bucket_per: [tenant]
    windows: [{ rate: 1/h, burst: 3 }]
""")
    ann = gw.key(user="ann")
    bob = gw.key(user="bob")
    other_tenant = gw.key(user="cat", tenant="globex")
    for k in (ann, ann, bob):
        assert gw.post("crm", "create_contact", CONTACT, key=k).status_code == 200
    r = gw.post("crm", "create_contact", CONTACT, key=bob)
    body = assert_problem(r, 429, "rate_limited")
    assert 'limit "per-tenant" allows 1/h with bursts of 3 for your tenant' in body["detail"]
    [v] = body["violated-policies"]
    assert v == {"policy": "per-tenant", "who": "tenant", "counts": "all", "quota": 3,
                 "rate": "1/h", "retry_after_s": 3600}
    assert r.headers["Retry-After"] == "3600"
    assert r.headers["RateLimit"].startswith('"per-tenant";r=0;')
    assert r.headers["RateLimit-Policy"] == '"per-tenant";q=3;w=10800'
    assert gw.post("crm", "create_contact", CONTACT, key=other_tenant).status_code == 200
    # Sandbox traffic never spends live quota: a live key of the same tenant
    # passes throttle (and then meets the live path, which is not built here).
    live = gw.key(user="ann", mode="live")
    assert_problem(gw.post("crm", "create_contact", CONTACT, key=live), 501, "live_unavailable")
    # The refused calls spent nothing: the tenant is still at exactly zero.
    usage = gw.get("/v1/me/usage", key=ann).json()
    [lim] = [l for l in usage["limits"] if l["policy"] == "per-tenant"]
    assert lim["windows"][0]["remaining"] == 0


def test_shadow_rule_counts_but_does_not_refuse(start):
    gw = start("""
rules:
  - name: trial
    match: { operations: ["crm.*"] }
    bucket_per: [user]
    windows: [{ rate: 1/h, burst: 2 }]
    shadow: true
""")
    key = gw.key()
    for _ in range(5):
        r = gw.post("crm", "create_contact", CONTACT, key=key)
        assert r.status_code == 200, r.text
    metrics = gw.get("/metrics").text
    assert 'sandgate_limit_shadow_total{rule="trial"} 3' in metrics, metrics
    assert 'sandgate_limit_over_total{rule="trial"} 0' in metrics
    usage = gw.get("/v1/me/usage", key=key).json()
    [lim] = [l for l in usage["limits"] if l["policy"] == "trial"]
    assert lim["shadow"] is True


def test_workload_classes_share_a_bucket_in_order(start):
    gw = start("""
rules:
  - name: shared
    bucket_per: [tenant]
    windows: [{ rate: 1/h, burst: 4 }]
    classes: { background: 50 }
""")
    dev = gw.key()
    lead = gw.key("lead")
    bg = {"Sandgate-Priority": "background"}
    ok = [gw.post("crm", "create_contact", CONTACT, key=dev, headers=bg) for _ in range(3)]
    assert [r.status_code for r in ok] == [200, 200, 429]
    assert ok[0].headers["Sandgate-Priority"] == "background"
    # Normal work may fill what background had to leave.  dev may not claim
    # critical: such a request runs as normal and says so.
    r = gw.post("crm", "create_contact", CONTACT, key=dev, headers={"Sandgate-Priority": "critical"})
    assert r.status_code == 200 and r.headers["Sandgate-Priority"] == "normal"
    assert gw.post("crm", "create_contact", CONTACT, key=dev).status_code == 200
    assert gw.post("crm", "create_contact", CONTACT, key=dev).status_code == 429
    # The bucket is empty now: nothing is left even for critical work.
    r = gw.post("crm", "create_contact", CONTACT, key=lead, headers={"Sandgate-Priority": "critical"})
    assert r.status_code == 429 and r.headers["Sandgate-Priority"] == "critical"
    body = assert_problem(gw.post("crm", "create_contact", CONTACT, key=dev,
                                  headers={"Sandgate-Priority": "urgent"}), 400, "priority_invalid")
    assert "critical, normal or background" in body["remediation"]


def test_critical_work_keeps_its_reserve(start):
    gw = start("""
rules:
  - name: reserve
    bucket_per: [tenant]
    windows: [{ rate: 1/h, burst: 4 }]
    classes: { normal: 50 }
""")
    dev, lead = gw.key(), gw.key("lead")
    codes = [gw.post("crm", "create_contact", CONTACT, key=dev).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    crit = {"Sandgate-Priority": "critical"}
    codes = [gw.post("crm", "create_contact", CONTACT, key=lead, headers=crit).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]


def test_upstream_limit_binds_live_calls_of_everyone(tmp_path):
    defs = tmp_path / "defs"
    shutil.copytree(EXAMPLES, defs)
    crm = defs / "connectors" / "crm.yaml"
    crm.write_text(crm.read_text().replace("upstream_limit: { rate: 50/s, burst: 100 }",
                                           "upstream_limit: { rate: 1/h, burst: 2 }"))
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    a = make_key(data, "admin", mode="live", user="a")["key"]
    b = make_key(data, "admin", mode="live", user="b", tenant="globex")["key"]
    sandbox = make_key(data, "admin", user="c")["key"]
    gw = Gateway(data).start()
    try:
        for k in (a, b):
            assert_problem(gw.post("crm", "create_contact", CONTACT, key=k), 501, "live_unavailable")
        body = assert_problem(gw.post("crm", "create_contact", CONTACT, key=a), 429, "rate_limited")
        assert body["violated-policies"][0]["policy"] == "upstream:crm"
        assert "for everyone per connector" in body["detail"]
        assert gw.post("crm", "create_contact", CONTACT, key=sandbox).status_code == 200
    finally:
        gw.assert_clean_exit(gw.stop())


@pytest.fixture
def slow_crm(tmp_path):
    """Examples whose crm simulator takes 400 ms per answer, plus extra rules."""
    def _make(rules):
        defs = tmp_path / "defs"
        shutil.copytree(EXAMPLES, defs)
        crm = defs / "connectors" / "crm.yaml"
        crm.write_text(crm.read_text().replace("sandbox: { simulator: true }",
                                               "sandbox: { simulator: true, latency: 400ms }"))
        (defs / "policies" / "extra.yaml").write_text(
            "kind: policy\nname: extra\nrules:\n" + rules)
        return defs
    return _make


def parallel(fn, n):
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: fn(), range(n)))


def test_concurrency_cap_counts_calls_in_flight(slow_crm, tmp_path):
    defs = slow_crm("  - { name: two-at-once, bucket_per: [tenant], concurrency: 2 }\n")
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    key = make_key(data, "admin", user="a")["key"]
    gw = Gateway(data).start()
    try:
        call = lambda: gw.post("crm", "create_contact", CONTACT, key=key)
        t0 = time.monotonic()
        results = parallel(call, 3)
        codes = sorted(r.status_code for r in results)
        assert codes == [200, 200, 429], [r.text for r in results]
        refused = [r for r in results if r.status_code == 429][0]
        body = assert_problem(refused, 429, "concurrency_limited")
        assert "allows 2 calls at once for your tenant" in body["detail"]
        assert refused.headers["RateLimit-Policy"] == '"two-at-once";q=2;qu="concurrent-requests"'
        # The admitted calls really waited for the simulated upstream.
        assert time.monotonic() - t0 >= 0.4
        # Slots are given back when calls end.
        assert sorted(r.status_code for r in parallel(call, 2)) == [200, 200]
    finally:
        gw.assert_clean_exit(gw.stop())


def test_reload_and_drain_with_calls_waiting_on_the_upstream(slow_crm, tmp_path):
    import signal

    defs = slow_crm("  - { name: roomy, bucket_per: [tenant], concurrency: 100 }\n")
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    key = make_key(data, "admin", user="a")["key"]
    gw = Gateway(data).start()
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(gw.post, "crm", "create_contact", CONTACT, key=key)
                   for _ in range(8)]
        time.sleep(0.15)
        gw.signal(signal.SIGHUP)  # the snapshot moves while they wait
        results = [f.result() for f in futures]
    assert [r.status_code for r in results] == [200] * 8, [r.text for r in results]
    # SIGTERM while calls wait: they finish, then the process exits cleanly.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(gw.post, "crm", "create_contact", CONTACT, key=key)
                   for _ in range(4)]
        time.sleep(0.15)
        rc = gw.stop()
        assert [f.result().status_code for f in futures] == [200] * 4
    gw.assert_clean_exit(rc)


def test_shutdown_past_the_drain_timeout_frees_waiting_calls(slow_crm, tmp_path):
    import concurrent.futures

    defs = slow_crm("  - { name: roomy, bucket_per: [tenant], concurrency: 100 }\n")
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    key = make_key(data, "admin", user="a")["key"]
    config = tmp_path / "sandgate.yaml"
    config.write_text("limits:\n  drain_timeout: 0s\n")
    gw = Gateway(data, config=str(config)).start()
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(gw.post, "crm", "create_contact", CONTACT, key=key)
                   for _ in range(3)]
        time.sleep(0.15)
        rc = gw.stop()
        for f in futures:
            try:
                f.result()  # the connection is closed without an answer
            except Exception:
                pass
    # No leak and no use-after-free from the abandoned calls (ASan build).
    gw.assert_clean_exit(rc)


def gateway_with(tmp_path, defs, config_text, threads=None):
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    config = tmp_path / "sandgate.yaml"
    config.write_text(config_text)
    extra = ["--threads", str(threads)] if threads else []
    return data, Gateway(data, extra_args=extra, config=str(config))


def queue_defs(tmp_path, rules):
    defs = tmp_path / "defs"
    shutil.copytree(os.path.join(EXAMPLES, "connectors"), defs / "connectors")
    (defs / "policies").mkdir()
    (defs / "policies" / "test.yaml").write_text(ROLES + rules)
    return defs


def timed_post(gw, key, headers=None):
    t0 = time.monotonic()
    r = gw.post("crm", "create_contact", CONTACT, key=key, headers=headers)
    return r, time.monotonic() - t0


def test_calls_over_the_limit_wait_their_turn(tmp_path):
    defs = queue_defs(tmp_path, """
rules:
  - { name: per-tenant, bucket_per: [tenant], windows: [{ rate: 2/s, burst: 1 }] }
""")
    data, gw = gateway_with(tmp_path, defs, "throttle:\n  queue_wait: 800ms\n", threads=1)
    key = make_key(data, "dev")["key"]
    gw.start()
    try:
        import concurrent.futures
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(timed_post, gw, key) for _ in range(4)]
            time.sleep(0.25)  # one answered, three waiting for a turn
            queue = gw.get("/v1/me/usage", key=key).json()["queue"]
            results = [f.result() for f in futures]
        assert queue == {"tenant_waiting": 3, "max_wait_s": 0.8, "depth_per_thread": 64}, queue
        ok = sorted(t for r, t in results if r.status_code == 200)
        refused = [r for r, t in results if r.status_code == 429]
        # One at once, one after ~0.5 s in the queue; the next would need
        # 1 s, past the 0.8 s deadline, so they are refused when it passes.
        assert len(ok) == 2 and len(refused) == 2, [r.text for r, _ in results]
        assert ok[1] >= 0.4
        for r in refused:
            body = assert_problem(r, 429, "rate_limited")
            assert body["detail"].startswith("after waiting "), body["detail"]
            assert 1 <= int(r.headers["Retry-After"]) <= 1
        # A call whose limit frees up later than the wait allows is refused at once.
        time.sleep(1.1)
        slow = make_key(data, "dev", user="slow")["key"]
        assert wait_for(lambda: gw.get("/v1/me/usage", key=slow).status_code == 200)
        metrics = gw.get("/metrics").text
        assert "sandgate_queued_total 3" in metrics, metrics
        assert 'sandgate_queue_refused_total{reason="deadline"} 2' in metrics
    finally:
        gw.assert_clean_exit(gw.stop())


def test_queue_is_bounded_and_background_never_waits(tmp_path):
    defs = queue_defs(tmp_path, """
rules:
  - { name: per-tenant, bucket_per: [tenant], windows: [{ rate: 1/s, burst: 1 }] }
""")
    data, gw = gateway_with(tmp_path, defs,
                            "throttle:\n  queue_wait: 5s\n  queue_depth: 1\n", threads=1)
    key = make_key(data, "dev")["key"]
    gw.start()
    try:
        assert gw.post("crm", "create_contact", CONTACT, key=key).status_code == 200
        r, took = timed_post(gw, key, headers={"Sandgate-Priority": "background"})
        assert r.status_code == 429 and took < 0.5
        results = parallel(lambda: timed_post(gw, key), 2)
        codes = sorted(r.status_code for r, _ in results)
        assert codes == [200, 429], [r.text for r, _ in results]
        [full] = [r for r, _ in results if r.status_code == 429]
        assert "already has 1 calls waiting for a turn" in full.json()["detail"]
    finally:
        gw.assert_clean_exit(gw.stop())


def test_load_shedding_keeps_a_share_for_critical_work(slow_crm, tmp_path):
    import concurrent.futures

    defs = slow_crm("  - { name: roomy, bucket_per: [tenant], concurrency: 100 }\n")
    data, gw = gateway_with(tmp_path, defs,
                            "shedding:\n  max_in_flight: 4\n  background_percent: 50\n"
                            "  normal_percent: 75\n")
    key = make_key(data, "admin", user="a")["key"]
    gw.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            slow = [pool.submit(gw.post, "crm", "create_contact", CONTACT, key=key)
                    for _ in range(3)]
            time.sleep(0.15)  # three calls are now waiting on the upstream
            bg = gw.post("mail", "send", {"to": ["a@example.com"], "subject": "s", "body": "b"},
                         key=key, headers={"Sandgate-Priority": "background"})
            body = assert_problem(bg, 503, "capacity")
            assert body["type"].endswith("#temporary-reduced-capacity")
            assert "turning away background work first" in body["detail"]
            normal = gw.post("mail", "send", {"to": ["a@example.com"], "subject": "s",
                                              "body": "b"}, key=key)
            assert_problem(normal, 503, "capacity")
            critical = gw.post("mail", "send", {"to": ["a@example.com"], "subject": "s",
                                                "body": "b"}, key=key,
                               headers={"Sandgate-Priority": "critical"})
            assert critical.status_code == 200, critical.text
            assert [f.result().status_code for f in slow] == [200] * 3
        assert gw.post("mail", "send", {"to": ["a@example.com"], "subject": "s", "body": "b"},
                       key=key, headers={"Sandgate-Priority": "background"}).status_code == 200
        metrics = gw.get("/metrics").text
        assert 'sandgate_shed_total{class="background"} 1' in metrics
        assert 'sandgate_shed_total{class="normal"} 1' in metrics
        assert 'sandgate_shed_total{class="critical"} 0' in metrics
    finally:
        gw.assert_clean_exit(gw.stop())


def quantile(samples, q):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * q))]


def gateway_latencies(data, tenant, n):
    """The gateway's own latency (receipt to reply, microseconds) of a tenant's
    calls from the audit record: two runs of light_latencies, warm-ups left out."""
    con = sqlite3.connect(os.path.join(data, "sandgate.db"))
    try:
        rows = [r[0] for r in con.execute(
            "SELECT latency_us FROM decisions WHERE tenant = ? AND decision = 'allowed'"
            " ORDER BY id", (tenant,))]
    finally:
        con.close()
    assert len(rows) == 2 * (n + 5), len(rows)
    return rows[5:n + 5], rows[n + 10:]


LIGHT_CALLS = 120


def light_latencies(gw, key, n=LIGHT_CALLS, pace=0.06):
    """A light tenant well within its quota (at most 1/pace calls a second,
    against the 20/s of the test's per-tenant rule): one call every `pace`
    seconds, after a few warm-up calls that open the connection."""
    import requests

    out, codes = [], []
    with requests.Session() as s:
        for i in range(n + 5):
            t0 = time.monotonic()
            r = gw.post("crm", "create_contact", CONTACT, key=key, session=s)
            if i >= 5:
                out.append(time.monotonic() - t0)
                codes.append(r.status_code)
            time.sleep(pace)
    return out, codes


# The heavy tenant runs in its own process, so it competes for the gateway
# and not for this interpreter's lock.  Each thread paces itself; normal
# calls wait in the heavy tenant's queue, background ones are refused at once.
FLOOD = r"""
import json, sys, threading, time, requests
url, key, seconds, rate = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
body = json.dumps({"email": "ada@example.com", "name": "Ada"})
codes, lock = [], threading.Lock()
def run(prio):
    h = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
    if prio:
        h["Sandgate-Priority"] = prio
    s = requests.Session()
    end, gap = time.monotonic() + seconds, 4 / rate
    nxt = time.monotonic()
    while time.monotonic() < end:
        r = s.post(url + "/v1/connectors/crm/create_contact", data=body, headers=h, timeout=10)
        with lock:
            codes.append(r.status_code)
        nxt += gap
        time.sleep(max(0, nxt - time.monotonic()))
ts = [threading.Thread(target=run, args=(p,)) for p in (None, None, "background", "background")]
t0 = time.monotonic()
[t.start() for t in ts]
[t.join() for t in ts]
print(json.dumps({"codes": codes, "seconds": time.monotonic() - t0}))
"""


def test_heavy_tenant_does_not_hurt_a_light_one(tmp_path):
    import json
    import subprocess
    import sys

    defs = queue_defs(tmp_path, """
rules:
  - { name: per-tenant, bucket_per: [tenant], windows: [{ rate: 20/s, burst: 10 }] }
""")
    data, gw = gateway_with(tmp_path, defs, "log:\n  requests: false\n")
    light = make_key(data, "dev", tenant="light")["key"]
    heavy = make_key(data, "dev", tenant="heavy")["key"]
    gw.start()
    try:
        solo, codes = light_latencies(gw, light)
        assert set(codes) == {200}
        # Over 10x the heavy tenant's 20/s quota, for as long as the light run
        # lasts; its queued calls go slower than their pace, the rest do not.
        flood = subprocess.Popen([sys.executable, "-c", FLOOD, gw.url, heavy, "8", "400"],
                                 stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        loaded, codes = light_latencies(gw, light)
        out = json.loads(flood.communicate(timeout=30)[0])
        sent, window = out["codes"], out["seconds"]
        # The heavy tenant asked for 10x its quota and got no more than it...
        assert len(sent) / window >= 200, (len(sent), window)
        assert sent.count(200) <= 10 + 20 * window + 1
        assert 429 in sent
        # ...and the light tenant never saw a refusal, and its calls took no
        # more than twice as long as alone, at the median and at p99.
        assert set(codes) == {200}, codes
        for q in (0.5, 0.99):
            assert quantile(loaded, q) < 2 * quantile(solo, q), (
                q, quantile(solo, q), quantile(loaded, q))
    finally:
        gw.assert_clean_exit(gw.stop())
    # The gateway's own receipt-to-reply time, from the audit record, without
    # the Python clients' overhead.  Its p99 is about 0.15 ms, where one
    # preemption on this shared machine doubles it, hence 1 ms of slack; had a
    # light call waited in the heavy tenant's queue (it drains at 20/s), it
    # would have taken up to 50 ms.
    solo_gw, loaded_gw = gateway_latencies(data, "light", LIGHT_CALLS)
    assert quantile(loaded_gw, 0.99) < 2 * quantile(solo_gw, 0.99) + 1000, (
        quantile(solo_gw, 0.99), quantile(loaded_gw, 0.99))


METERED = """\
kind: connector
name: metered
version: 1.0.0
description: An upstream that reports how many units each call used.
auth: none
environments:
  sandbox: { simulator: true }
  live: { simulator: true }
operations:
  search:
    description: Search; the answer says what it cost.
    method: POST
    path: /search
    data_domain: public
    weight: 1
    reported_weight: /usage/units
    input: { type: object, properties: { q: { type: string } } }
    output:
      type: object
      required: [hits, usage]
      properties:
        hits: { type: integer }
        usage:
          type: object
          required: [units]
          properties: { units: { type: integer, minimum: 1, maximum: 10 } }
    examples:
      - { hits: 3, usage: { units: 5 } }
"""


def test_upstream_reported_usage_is_charged_afterwards(tmp_path):
    defs = queue_defs(tmp_path, """
rules:
  - { name: units, bucket_per: [api_key], windows: [{ rate: 1/h, burst: 10 }] }
""")
    (defs / "connectors" / "metered.yaml").write_text(METERED)
    data, gw = gateway_with(tmp_path, defs, "throttle:\n  queue_wait: 0s\n")
    key = make_key(data, "dev")["key"]
    gw.start()
    try:
        answers = [gw.post("metered", "search", {"q": "x"}, key=key) for _ in range(3)]
        assert answers[0].json()["usage"]["units"] == 5, answers[0].text
        # Each call weighs 1 up front and 5 once the upstream reports it:
        # 10 units go in two calls, not ten.
        assert [r.status_code for r in answers] == [200, 200, 429]
        assert answers[2].json()["violated-policies"][0]["policy"] == "units"
    finally:
        gw.assert_clean_exit(gw.stop())


def metric(gw, name):
    import re as _re
    m = _re.search(r"^" + _re.escape(name) + r" (\d+)$", gw.get("/metrics").text, _re.M)
    return int(m.group(1)) if m else None


def test_adaptive_concurrency_follows_upstream_latency(tmp_path):
    import signal
    import threading

    import requests

    # ROLES' dev role may make 1000 live calls a second, so the upstream,
    # not a rate limit, is what holds the clients back.
    defs = queue_defs(tmp_path, "")
    crm = defs / "connectors" / "crm.yaml"
    original = crm.read_text()
    live = 'live: { base_url: "https://crm.example.com/api/v2" }'

    def set_latency(ms):
        crm.write_text(original.replace(live, f"live: {{ simulator: true, latency: {ms}ms }}")
                       .replace("upstream_limit: { rate: 50/s, burst: 100 }",
                                "upstream_concurrency: { initial: 8, min: 2, max: 64 }"))
    set_latency(20)
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    key = make_key(data, "dev", mode="live", user="a")["key"]
    gw = Gateway(data).start()
    name = 'sandgate_upstream_concurrency_limit{connector="crm"}'
    stop = threading.Event()
    codes = []

    def client():
        with requests.Session() as s:
            while not stop.is_set():
                codes.append(gw.post("crm", "get_contact", {"id": "ct_1"}, key=key,
                                     session=s).status_code)

    # The controller never grows a limit past twice the calls in flight (it
    # would learn nothing), so 24 clients leave room to climb back to 48 and
    # more.  With 12, recovery stopped near 24 and the check below hung on
    # noise: slow settled at 16-20 depending on how precisely waits ended.
    threads = [threading.Thread(target=client) for _ in range(24)]
    try:
        for t in threads:
            t.start()
        time.sleep(2.5)
        quick = metric(gw, name)
        assert quick > 8, quick  # busy and quick: the limit climbs
        set_latency(300)
        run_cli("apply", "-f", str(defs), data_dir=data)  # tells the gateway to reload
        time.sleep(5)
        slow = metric(gw, name)
        # Gradient2 reacts to change: as the slow average catches up, the
        # limit settles (about 1/(1-gradient)^2) rather than reaching its min.
        assert slow < quick / 2, (quick, slow)
        assert metric(gw, 'sandgate_upstream_refused_total{connector="crm"}') > 0
        set_latency(20)
        run_cli("apply", "-f", str(defs), data_dir=data)
        time.sleep(3)
        recovered = metric(gw, name)
        assert recovered > slow * 1.5, (quick, slow, recovered)
    finally:
        stop.set()
        for t in threads:
            t.join()
        gw.assert_clean_exit(gw.stop())
    assert set(codes) <= {200, 503}, set(codes)
