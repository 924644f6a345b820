"""The throttling engine against the real binary: several windows on one rule,
weighted costs, shared buckets, shadow rules, workload classes, upstream
limits and the way each refusal explains itself."""

import math
import os
import re
import shutil
import time

import pytest

from conftest import (EXAMPLES, Gateway, arrival_us, assert_problem, audit, make_key, metric,
                      run_cli, wait_for)

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


def simulate_live_sides(defs):
    """The examples' live sides name real hosts; no test may reach for them."""
    for f in (defs / "connectors").glob("*.yaml"):
        f.write_text(re.sub(r'live: \{ base_url: "[^"]*" \}', "live: { simulator: true }",
                            f.read_text()))


@pytest.fixture
def start(tmp_path):
    """start(rules_yaml) -> a running gateway whose policy is ROLES plus those rules."""
    started = []

    def _start(rules):
        defs = tmp_path / "defs"
        shutil.copytree(os.path.join(EXAMPLES, "connectors"), defs / "connectors")
        simulate_live_sides(defs)
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


def hammer(gw, key, seconds, op="create_contact", body=CONTACT, headers=None, clients=1):
    """Calls as fast as `clients` clients can for `seconds`; returns how many
    calls they made."""
    import concurrent.futures

    import requests

    end = time.monotonic() + seconds

    def one():
        calls = 0
        with requests.Session() as s:
            while time.monotonic() < end:
                r = gw.post("crm", op, body, key=key, session=s, headers=headers)
                assert r.status_code in (200, 429), r.text
                calls += 1
        return calls
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        return sum(pool.map(lambda _: one(), range(clients)))


def key_id(key):
    return key.split("_")[1]


def assert_admits_exactly(gw, key, calls, admits, at=()):
    """GCRA's promise, judged on the gateway's own clock: over the span from
    its first decision, a key is admitted no more than admits(span), what
    the windows let through with buckets full at the start, at any moment;
    and no fewer at the moments listed in `at` (seconds) and at the last
    admission, since four clients keep calls waiting in the key's queue and
    so claim every unit as soon as it frees up, even while a client stalls
    (the one answered has three turns' time to send again).

    The audit gives each decision's time to a microsecond or so: the call's
    arrival plus its wait in the queue.  Only a span within 2 ms of a unit's
    boundary may land on either side of it (a queued call is admitted at its
    unit's boundary, a timer's wake-up after it).  Where the client's wall
    clock decided the span, as it once did here, a stall of the client cost
    a unit or two: that was not the gateway's error."""
    rows = audit(gw.data_dir, "key_id = ?", (key_id(key),), until=lambda rows: len(rows) == calls)
    assert {r["status"] for r in rows} <= {200, 429}, rows
    t0 = min(arrival_us(r) + r["queue_wait_us"] for r in rows)
    spans = sorted((arrival_us(r) + r["queue_wait_us"] - t0) / 1e6 for r in rows
                   if r["decision"] == "allowed")
    for n, span in enumerate(spans, 1):
        assert n <= admits(span + 0.002), (n, admits(span), span)
    for cut in (*at, spans[-1]):
        n, span = min(enumerate(spans, 1), key=lambda x: abs(x[1] - cut))
        assert admits(span - 0.002) <= n, (n, admits(span), span)
    return spans[-1]


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
    calls = hammer(gw, key, 4.0, clients=4)
    assert_admits_exactly(gw, key, calls,
                          lambda t: min(3 + math.floor(10 * t), 12 + math.floor(4 * t)), at=(1.0,))


def test_weighted_cost_spends_units(start):
    # list_contacts weighs 2 units: 6 + 10/s units is 3 calls at once, then
    # one every 200 ms.
    gw = start("""
rules:
  - name: units
    bucket_per: [api_key]
    windows: [{ rate: 10/s, burst: 6 }]
""")
    key = gw.key()
    calls = hammer(gw, key, 1.0, op="list_contacts", body={}, clients=4)
    assert_admits_exactly(gw, key, calls, lambda t: (6 + math.floor(10 * t)) // 2)


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
    # passes throttle and is answered.
    live = gw.key(user="ann", mode="live")
    assert gw.post("crm", "create_contact", CONTACT, key=live).status_code == 200
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
    simulate_live_sides(defs)
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
            assert gw.post("crm", "create_contact", CONTACT, key=k).status_code == 200
        body = assert_problem(gw.post("crm", "create_contact", CONTACT, key=a), 429, "rate_limited")
        assert body["violated-policies"][0]["policy"] == "upstream:crm"
        assert "for everyone per connector" in body["detail"]
        assert gw.post("crm", "create_contact", CONTACT, key=sandbox).status_code == 200
    finally:
        gw.assert_clean_exit(gw.stop())


@pytest.fixture
def slow_crm(tmp_path):
    """Examples whose crm simulator takes `latency` per answer, plus extra rules."""
    def _make(rules, latency="400ms"):
        defs = tmp_path / "defs"
        shutil.copytree(EXAMPLES, defs)
        crm = defs / "connectors" / "crm.yaml"
        crm.write_text(crm.read_text().replace("sandbox: { simulator: true }",
                                               f"sandbox: {{ simulator: true, latency: {latency} }}"))
        (defs / "policies" / "extra.yaml").write_text(
            "kind: policy\nname: extra\nrules:\n" + rules)
        return defs
    return _make


def parallel(fn, n):
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: fn(), range(n)))


def cap_in_flight(gw, key, policy):
    """The calls a concurrency rule counts in flight now, as the gateway says
    (GET /v1/me/usage): a place is given back only once its call has ended."""
    usage = gw.get("/v1/me/usage", key=key).json()
    [lim] = [l for l in usage["limits"] if l["policy"] == policy]
    return lim["concurrency"]["in_flight"]


def submit_and_wait_in_flight(pool, gw, key, policy, n):
    """Sends n slow calls from `pool` and returns their futures once the
    gateway holds all n in flight: what a sleep used to stand in for."""
    futures = [pool.submit(gw.post, "crm", "create_contact", CONTACT, key=key) for _ in range(n)]
    assert wait_for(lambda: cap_in_flight(gw, key, policy) == n, timeout=10), (
        f"the gateway never held {n} calls in flight")
    return futures


def test_concurrency_cap_counts_calls_in_flight(slow_crm, tmp_path):
    import concurrent.futures

    # 2 s of simulated upstream: the third call has that long to arrive while
    # the first two are held, which the test checks before sending it.
    defs = slow_crm("  - { name: two-at-once, bucket_per: [tenant], concurrency: 2 }\n",
                    latency="2s")
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    key = make_key(data, "admin", user="a")["key"]
    gw = Gateway(data).start()
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            held = submit_and_wait_in_flight(pool, gw, key, "two-at-once", 2)
            refused = gw.post("crm", "create_contact", CONTACT, key=key)
            assert [f.result().status_code for f in held] == [200, 200]
        body = assert_problem(refused, 429, "concurrency_limited")
        assert "allows 2 calls at once for your tenant" in body["detail"]
        assert refused.headers["RateLimit-Policy"] == '"two-at-once";q=2;qu="concurrent-requests"'
        # The admitted calls really waited for the simulated upstream, on the
        # gateway's own clock.
        rows = audit(data, "key_id = ? AND status = 200", (key_id(key),),
                     until=lambda rows: len(rows) == 2)
        assert all(r["latency_us"] >= 2_000_000 for r in rows), rows
        # Places are given back when calls end.
        assert wait_for(lambda: cap_in_flight(gw, key, "two-at-once") == 0, timeout=10)
        assert sorted(r.status_code for r in parallel(
            lambda: gw.post("crm", "create_contact", CONTACT, key=key), 2)) == [200, 200]
    finally:
        gw.assert_clean_exit(gw.stop())


def test_reload_and_drain_with_calls_waiting_on_the_upstream(slow_crm, tmp_path):
    import concurrent.futures
    import signal

    defs = slow_crm("  - { name: roomy, bucket_per: [tenant], concurrency: 100 }\n", latency="1s")
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    key = make_key(data, "admin", user="a")["key"]
    gw = Gateway(data).start()
    rc = None
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = submit_and_wait_in_flight(pool, gw, key, "roomy", 8)
            gw.signal(signal.SIGHUP)  # the snapshot moves while they wait
            assert wait_for(lambda: "catalog and policy reloaded" in gw.log_text(), timeout=10)
            results = [f.result() for f in futures]
        assert [r.status_code for r in results] == [200] * 8, [r.text for r in results]
        # SIGTERM while calls wait: they finish, then the process exits cleanly.
        assert wait_for(lambda: cap_in_flight(gw, key, "roomy") == 0, timeout=10)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = submit_and_wait_in_flight(pool, gw, key, "roomy", 4)
            rc = gw.stop()
            assert [f.result().status_code for f in futures] == [200] * 4
    finally:
        rc = gw.stop() if rc is None else rc
    gw.assert_clean_exit(rc)


def test_shutdown_past_the_drain_timeout_frees_waiting_calls(slow_crm, tmp_path):
    import concurrent.futures

    defs = slow_crm("  - { name: roomy, bucket_per: [tenant], concurrency: 100 }\n", latency="2s")
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    key = make_key(data, "admin", user="a")["key"]
    config = tmp_path / "sandgate.yaml"
    config.write_text("limits:\n  drain_timeout: 0s\n")
    gw = Gateway(data, config=str(config)).start()
    rc = None
    try:
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            futures = submit_and_wait_in_flight(pool, gw, key, "roomy", 3)
            rc = gw.stop()
            for f in futures:
                try:
                    f.result()  # the connection is closed without an answer
                except Exception:
                    pass
    finally:
        rc = gw.stop() if rc is None else rc
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


def test_calls_over_the_limit_wait_their_turn(tmp_path):
    # create_contact: one call every 2 s, and a call waits at most 3 s.  Of
    # four calls sent at once, one is admitted at once, one at its turn 2 s
    # later, and the other two would need 4 s, so they are refused when
    # their 3 s pass.  (The four have a whole second to arrive: at 2/s and
    # 800 ms they had 200 ms.)  get_contact: one call a minute, so a second
    # call cannot get a turn within the wait and is refused at once.
    import concurrent.futures

    defs = queue_defs(tmp_path, """
rules:
  - name: per-tenant
    match: { operations: ["crm.create_contact"] }
    bucket_per: [tenant]
    windows: [{ rate: 30/m, burst: 1 }]
  - name: lookups
    match: { operations: ["crm.get_contact"] }
    bucket_per: [tenant]
    windows: [{ rate: 1/m, burst: 1 }]
""")
    data, gw = gateway_with(tmp_path, defs, "throttle:\n  queue_wait: 3s\n", threads=1)
    key = make_key(data, "dev")["key"]
    gw.start()
    try:
        seen = []

        def three_waiting():
            seen.append(gw.get("/v1/me/usage", key=key).json()["queue"])
            return seen[-1]["tenant_waiting"] == 3
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(gw.post, "crm", "create_contact", CONTACT, key=key)
                       for _ in range(4)]
            assert wait_for(three_waiting, timeout=10), seen
            results = [f.result() for f in futures]
        assert seen[-1] == {"tenant_waiting": 3, "max_wait_s": 3.0, "depth_per_thread": 64}
        assert sorted(r.status_code for r in results) == [200, 200, 429, 429], [
            r.text for r in results]
        for r in results:
            if r.status_code == 429:
                body = assert_problem(r, 429, "rate_limited")
                assert body["detail"].startswith("after waiting "), body["detail"]
                # The next unit frees 2 s after the turn, about 1 s after these
                # deadlines: rounded up, 1, or 2 when the turn's timer woke
                # later than this call arrived after the first.
                assert r.headers["Retry-After"] in ("1", "2"), r.headers["Retry-After"]
        # On the gateway's clock: the first was never queued; the second was
        # admitted no sooner than its unit freed up, 2 s after the first; the
        # other two waited out their whole 3 s (the deadline is kept on the
        # clock that measures the wait, so no less, however busy the machine).
        rows = audit(data, "key_id = ? AND operation = 'create_contact'", (key_id(key),),
                     until=lambda rows: len(rows) == 4)
        [first] = [r for r in rows if r["queue_wait_us"] == 0]
        [turn] = [r for r in rows if r["decision"] == "allowed" and r["queue_wait_us"] > 0]
        late = [r for r in rows if r["status"] == 429]
        assert first["decision"] == "allowed"
        assert arrival_us(turn) + turn["queue_wait_us"] - arrival_us(first) >= 2_000_000 - 2000
        assert len(late) == 2 and all(r["queue_wait_us"] >= 3_000_000 for r in late), late
        assert metric(gw, "sandgate_queued_total") == 3
        assert metric(gw, 'sandgate_queue_refused_total{reason="deadline"}') == 2

        # A call whose limit frees up later than the wait allows is refused at once.
        lookup = lambda: gw.post("crm", "get_contact", {"id": "ct_1"}, key=key)
        assert lookup().status_code == 200
        r = lookup()
        body = assert_problem(r, 429, "rate_limited")
        assert not body["detail"].startswith("after waiting "), body["detail"]
        assert int(r.headers["Retry-After"]) > 3
        lookups = audit(data, "key_id = ? AND operation = 'get_contact'", (key_id(key),),
                        until=lambda rows: len(rows) == 2)
        assert [r["queue_wait_us"] for r in lookups] == [0, 0]
        assert metric(gw, "sandgate_queued_total") == 3
    finally:
        gw.assert_clean_exit(gw.stop())


def test_queue_is_bounded_and_background_never_waits(tmp_path):
    # One call every 3 s, a queue one call deep: the test's calls all come
    # well within the 3 s the first call leaves.
    defs = queue_defs(tmp_path, """
rules:
  - { name: per-tenant, bucket_per: [tenant], windows: [{ rate: 20/m, burst: 1 }] }
""")
    data, gw = gateway_with(tmp_path, defs,
                            "throttle:\n  queue_wait: 5s\n  queue_depth: 1\n", threads=1)
    key = make_key(data, "dev")["key"]
    gw.start()
    try:
        import concurrent.futures

        assert gw.post("crm", "create_contact", CONTACT, key=key).status_code == 200
        r = gw.post("crm", "create_contact", CONTACT, key=key,
                    headers={"Sandgate-Priority": "background"})
        assert_problem(r, 429, "rate_limited")
        assert metric(gw, "sandgate_queued_total") == 0  # refused without waiting
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(gw.post, "crm", "create_contact", CONTACT, key=key)
            assert wait_for(lambda: metric(gw, "sandgate_queue_depth") == 1, timeout=10)
            full = gw.post("crm", "create_contact", CONTACT, key=key)
            assert waiting.result().status_code == 200, waiting.result().text
        body = assert_problem(full, 429, "rate_limited")
        assert "already has 1 calls waiting for a turn" in body["detail"]
        assert metric(gw, 'sandgate_queue_refused_total{reason="full"}') == 1
        rows = audit(data, "key_id = ?", (key_id(key),), until=lambda rows: len(rows) == 4)
        assert [(r["status"], r["queue_wait_us"] > 0) for r in rows] == [
            (200, False), (429, False), (429, False), (200, True)], rows
    finally:
        gw.assert_clean_exit(gw.stop())


def test_load_shedding_keeps_a_share_for_critical_work(slow_crm, tmp_path):
    import concurrent.futures

    # The three slow calls are held 2 s: the time the three checks have.
    defs = slow_crm("  - { name: roomy, bucket_per: [tenant], concurrency: 100 }\n", latency="2s")
    data, gw = gateway_with(tmp_path, defs,
                            "shedding:\n  max_in_flight: 4\n  background_percent: 50\n"
                            "  normal_percent: 75\n")
    key = make_key(data, "admin", user="a")["key"]
    mail = {"to": ["a@example.com"], "subject": "s", "body": "b"}
    gw.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            slow = submit_and_wait_in_flight(pool, gw, key, "roomy", 3)
            bg = gw.post("mail", "send", mail, key=key, headers={"Sandgate-Priority": "background"})
            normal = gw.post("mail", "send", mail, key=key)
            critical = gw.post("mail", "send", mail, key=key,
                               headers={"Sandgate-Priority": "critical"})
            assert [f.result().status_code for f in slow] == [200] * 3
        body = assert_problem(bg, 503, "capacity")
        assert body["type"].endswith("#temporary-reduced-capacity")
        assert "turning away background work first" in body["detail"]
        assert_problem(normal, 503, "capacity")
        assert critical.status_code == 200, critical.text
        # Once the slow calls have ended, background work passes again.
        assert wait_for(lambda: cap_in_flight(gw, key, "roomy") == 0, timeout=10)
        assert gw.post("mail", "send", mail, key=key,
                       headers={"Sandgate-Priority": "background"}).status_code == 200
        assert metric(gw, 'sandgate_shed_total{class="background"}') == 1
        assert metric(gw, 'sandgate_shed_total{class="normal"}') == 1
        assert metric(gw, 'sandgate_shed_total{class="critical"}') == 0
    finally:
        gw.assert_clean_exit(gw.stop())


def quantile(samples, q):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * q))]


def light_calls(gw, key, n, pace=0.06):
    """A light tenant well within its quota: one call, then `pace` seconds of
    rest, so the gateway sees at most 1/pace calls a second (16.7 against the
    rule's 20/s, whatever the client's stalls: a call is sent only after the
    answer to the one before).  Returns the client's latencies and codes."""
    import requests

    out, codes = [], []
    with requests.Session() as s:
        for _ in range(n):
            t0 = time.monotonic()
            r = s.post(f"{gw.url}/v1/connectors/crm/create_contact", json=CONTACT, timeout=10,
                       headers={"Authorization": "Bearer " + key})
            out.append(time.monotonic() - t0)
            codes.append(r.status_code)
            time.sleep(pace)
    return out, codes


# The heavy tenant runs in its own process, so it competes for the gateway
# and not for this interpreter's lock, until its stdin is closed.  Each of
# its NORMAL threads always has a call in flight, so the tenant's queue
# holds about that many calls at any time; two background threads, paced
# at 100/s each, are refused at once (background work never waits).
FLOOD = r"""
import json, sys, threading, time, requests
url, key, normal = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = json.dumps({"email": "ada@example.com", "name": "Ada"})
codes, lock, stop = [], threading.Lock(), threading.Event()
def run(prio):
    h = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
    if prio:
        h["Sandgate-Priority"] = prio
    s = requests.Session()
    nxt = time.monotonic()
    while not stop.is_set():
        r = s.post(url + "/v1/connectors/crm/create_contact", data=body, headers=h, timeout=10)
        with lock:
            codes.append(r.status_code)
        if prio:
            nxt += 0.01
            time.sleep(max(0, nxt - time.monotonic()))
ts = [threading.Thread(target=run, args=(p,)) for p in [None] * normal + ["background"] * 2]
[t.start() for t in ts]
sys.stdin.read()
stop.set()
[t.join() for t in ts]
print(json.dumps(codes))
"""

HEAVY_NORMAL_THREADS = 8
SOLO_CALLS, LIGHT_CALLS = 30, 100
RATE, BURST = 20, 10  # the per-tenant rule: a queued call gets a turn every 50 ms
DRAIN_US = 1_000_000 // RATE


def check_fairness(tmp_path, bucket_per):
    """A heavy tenant floods the gateway far past its quota while a light one
    calls well within its own.  Fairness is judged from the gateway's own
    record of what the light tenant did not suffer:

    - no refusal: every light call was admitted (the audit says 'allowed',
      the client saw 200);
    - no wait: the audit records queue_wait_us == 0 for every light call.
      The fair queue is the only place where the gateway orders one call
      behind another, so this is what "no light call was ordered behind a
      heavy call" means: none of them waited for a turn;
    - no slowness from the heavy tenant: the gateway's own receipt-to-reply
      time (latency_us) of the light calls stays far below the heavy
      queue's drain interval (50 ms), the least a call that had to take
      turns with the heavy tenant's would wait.

    And the scenario did test something: while the light tenant called, the
    heavy tenant had calls waiting in its queue (audit: queue_wait_us > 0,
    over intervals that cover the light calls' arrivals), was refused more
    than admitted, and was admitted no faster than its quota."""
    import json
    import subprocess
    import sys

    defs = queue_defs(tmp_path, f"""
rules:
  - {{ name: per-tenant, bucket_per: {bucket_per}, windows: [{{ rate: {RATE}/s, burst: {BURST} }}] }}
""")
    data, gw = gateway_with(tmp_path, defs, "log:\n  requests: false\n")
    light = make_key(data, "dev", tenant="light")["key"]
    heavy = make_key(data, "dev", tenant="heavy")["key"]
    gw.start()
    flood = None
    try:
        solo, solo_codes = light_calls(gw, light, SOLO_CALLS)
        flood = subprocess.Popen([sys.executable, "-c", FLOOD, gw.url, heavy,
                                  str(HEAVY_NORMAL_THREADS)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        # The light calls start once the heavy tenant has calls waiting.
        assert wait_for(lambda: metric(gw, "sandgate_queue_depth") >= HEAVY_NORMAL_THREADS // 2,
                        timeout=20), "the heavy tenant never had calls waiting in its queue"
        loaded, loaded_codes = light_calls(gw, light, LIGHT_CALLS)
        # Closing its stdin (communicate does) stops the flood.
        heavy_codes = json.loads(flood.communicate(timeout=60)[0])
    finally:
        if flood and flood.poll() is None:
            flood.kill()
            flood.wait()
        gw.assert_clean_exit(gw.stop())

    light_rows = audit(data, "tenant = 'light'",
                       until=lambda rows: len(rows) == SOLO_CALLS + LIGHT_CALLS)
    heavy_rows = audit(data, "tenant = 'heavy'", until=lambda rows: len(rows) == len(heavy_codes))
    loaded_rows = light_rows[SOLO_CALLS:]

    # The scenario: the heavy tenant asked for far more than its quota, had
    # calls waiting in its queue while the light tenant called, and was
    # admitted no faster than its quota on the gateway's clock (a record's
    # time is read just after its latency, so each admission time may be
    # late by a moment of scheduling; one token each end allows 50 ms).
    admitted = sorted(arrival_us(r) + r["queue_wait_us"] for r in heavy_rows
                      if r["decision"] == "allowed")
    refused = [r for r in heavy_rows if r["status"] == 429]
    queued = [(arrival_us(r), arrival_us(r) + r["queue_wait_us"]) for r in heavy_rows
              if r["queue_wait_us"] > 0]
    assert len(refused) > len(admitted) > BURST, (len(refused), len(admitted))
    span_s = (admitted[-1] - admitted[0]) / 1e6
    assert len(admitted) <= BURST + RATE * span_s + 2, (len(admitted), span_s)
    covered = [r for r in loaded_rows
               if any(a <= arrival_us(r) <= b for a, b in queued)]
    assert len(covered) >= len(loaded_rows) // 2, (
        f"only {len(covered)} of {len(loaded_rows)} light calls arrived while heavy calls waited")

    # What the light tenant did not suffer.
    assert set(solo_codes + loaded_codes) == {200}, solo_codes + loaded_codes
    assert {r["decision"] for r in light_rows} == {"allowed"}
    waited = [(r["trace_id"], r["queue_wait_us"]) for r in light_rows if r["queue_wait_us"] != 0]
    assert waited == [], f"light calls ordered behind others in a queue: {waited}"
    gateway_us = [r["latency_us"] for r in loaded_rows]
    print(f"light calls on the gateway: median {quantile(gateway_us, 0.5)} us, "
          f"p90 {quantile(gateway_us, 0.9)} us, max {max(gateway_us)} us; "
          f"{len(covered)} of {len(loaded_rows)} arrived while {len(queued)} heavy calls "
          f"took turns; client median {quantile(solo, 0.5) * 1e3:.1f} ms alone, "
          f"{quantile(loaded, 0.5) * 1e3:.1f} ms loaded")
    assert quantile(gateway_us, 0.5) < DRAIN_US / 5, sorted(gateway_us)
    assert quantile(gateway_us, 0.9) < DRAIN_US, sorted(gateway_us)
    # The client's view, with the headroom a shared machine needs: the
    # median call took no more than three times as long as alone, plus 50 ms.
    assert quantile(loaded, 0.5) <= 3 * quantile(solo, 0.5) + 0.05, (
        quantile(solo, 0.5), quantile(loaded, 0.5))


def test_heavy_tenant_does_not_hurt_a_light_one(tmp_path):
    check_fairness(tmp_path, "[tenant]")


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
    # more.  Each phase waits for the state it expects, with a deadline,
    # instead of sleeping and hoping the controller got there.
    threads = [threading.Thread(target=client) for _ in range(24)]
    seen = []

    def limit_reaches(ok):
        seen.append(metric(gw, name))
        return seen[-1] is not None and ok(seen[-1])
    try:
        for t in threads:
            t.start()
        # Busy and quick: the limit climbs to three times its start.
        assert wait_for(lambda: limit_reaches(lambda v: v >= 24), timeout=30), seen
        set_latency(300)
        run_cli("apply", "-f", str(defs), data_dir=data)  # tells the gateway to reload
        # Slow: the limit falls to less than half of the highest it reached
        # (it may climb on a little until the reload lands), and the calls
        # past it are refused.  It settles there rather than at its min: as
        # the slow average catches up, a steady latency is the new normal.
        assert wait_for(lambda: limit_reaches(lambda v: v < max(seen) / 2), timeout=30), seen
        slow = seen[-1]
        assert wait_for(lambda: metric(gw, 'sandgate_upstream_refused_total{connector="crm"}') > 0,
                        timeout=30)
        set_latency(20)
        run_cli("apply", "-f", str(defs), data_dir=data)
        # Quick again: it climbs back.
        assert wait_for(lambda: limit_reaches(lambda v: v > slow * 1.5), timeout=30), seen
    finally:
        print("concurrency limit samples:", seen)
        stop.set()
        for t in threads:
            t.join()
        gw.assert_clean_exit(gw.stop())
    assert set(codes) <= {200, 503}, set(codes)
