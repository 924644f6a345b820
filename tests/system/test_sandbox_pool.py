"""How the gateway shares its sandbox workers: tenants that ran once cannot
lock out the rest, a tenant cannot hold more runs than tenant_runs, and a
run that cannot be handed to a worker costs no worker."""

import json
import shutil
import sqlite3
import threading

import pytest
import requests

from conftest import EXAMPLES, Gateway, alive, assert_problem, make_key, run_cli, wait_for

TENANTS = ("t1", "t2", "t3")
SLOW = "function run(input, ctx)\n  local x = 0\n  while true do x = x + 1 end\nend\n"
ECHO = "function run(input, ctx)\n  return #input.text\nend\n"


def add_template(defs, name, lua, limits="wall_time: 2s", schema="{type: object}"):
    d = defs / "templates" / name
    d.mkdir(parents=True)
    (d / "template.yaml").write_text(
        f"kind: template\nname: {name}\nversion: 1.0.0\ndescription: pool test\n"
        f"input: {schema}\ncapabilities: []\nlimits:\n  {limits}\n"
        "  instructions: 1000000000000\n  cpu_time: 10s\n")
    (d / "main.lua").write_text(lua)


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    root = tmp_path_factory.mktemp("pool")
    defs = root / "defs"
    shutil.copytree(EXAMPLES, defs)
    add_template(defs, "trivial", "function run(input, ctx) return 1 end\n")
    add_template(defs, "slow", SLOW, limits="wall_time: 1s")
    add_template(defs, "echo", ECHO, schema="{type: object, properties: {text: {type: string}}}")
    data = str(root / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    cfg = root / "sandgate.yaml"
    cfg.write_text("limits:\n  max_body_bytes: 4194304\n"
                   "sandbox:\n  max_workers: 2\n  prefork: 0\n  tenant_runs: 1\n")
    g = Gateway(data, config=str(cfg))
    g.keys = {t: make_key(data, "maker", tenant=t)["key"] for t in TENANTS}
    g.start()
    yield g
    g.assert_clean_exit(g.stop())


def run(gw, tenant, name, body=None):
    return requests.post(f"{gw.url}/v1/templates/{name}/runs", data=json.dumps(body or {}),
                         timeout=30, headers={"Authorization": "Bearer " + gw.keys[tenant],
                                              "Content-Type": "application/json"})


def workers(gw):
    return requests.get(gw.admin_url + "/readyz", timeout=5).json()["sandbox"]["workers"]


def test_tenants_that_ran_once_do_not_lock_out_the_rest(gw):
    # Two slots, three tenants: each new tenant takes the place of the idlest.
    pids = {}
    for t in TENANTS + TENANTS:
        r = run(gw, t, "trivial")
        assert r.status_code == 200, r.text
        pids.setdefault(t, set()).add(r.json()["worker_pid"])
    assert workers(gw)["idle"] + workers(gw)["busy"] <= 2
    for a in TENANTS:
        for b in TENANTS:
            if a != b:
                assert not pids[a] & pids[b], pids


def test_a_run_over_its_wall_time_has_its_worker_killed(gw):
    r = run(gw, "t2", "slow")
    doc = r.json()["run"]
    assert doc["stopped_by"]["limit"] == "wall_time", doc
    assert wait_for(lambda: not alive(doc["worker_pid"]), timeout=5), doc["worker_pid"]
    assert run(gw, "t2", "trivial").json()["worker_pid"] != doc["worker_pid"]


def test_a_tenant_holds_at_most_tenant_runs_at_once(gw):
    out = []
    slow = threading.Thread(target=lambda: out.append(run(gw, "t1", "slow")))
    slow.start()
    try:
        for _ in range(100):
            if workers(gw)["busy"] == 1:
                break
            threading.Event().wait(0.02)
        r = run(gw, "t1", "trivial")
        assert_problem(r, 429, "runs_limited")
        assert r.headers["Retry-After"] == "1"
        # Another tenant is not held back by it.
        assert run(gw, "t2", "trivial").status_code == 200
    finally:
        slow.join()
    assert out[0].json()["run"]["stopped_by"]["limit"] == "wall_time"


def test_when_every_worker_is_busy_a_new_tenant_is_told_plainly(gw):
    out = []
    slow = [threading.Thread(target=lambda t=t: out.append(run(gw, t, "slow")))
            for t in ("t1", "t2")]
    for t in slow:
        t.start()
    try:
        for _ in range(200):
            if workers(gw)["busy"] == 2:
                break
            threading.Event().wait(0.02)
        assert workers(gw)["busy"] == 2
        body = assert_problem(run(gw, "t3", "trivial"), 503, "sandbox_unavailable")
        assert body["run"]["error"]["code"] == "sandbox_unavailable"
        # It never had a worker, so its clock never ran.
        assert body["run"]["usage"]["wall_ms"] == 0
        assert "worker" in body["remediation"] or "sandbox" in body["remediation"]
    finally:
        for t in slow:
            t.join()
    assert [r.status_code for r in out] == [422, 422]
    assert run(gw, "t3", "trivial").status_code == 200


def test_an_input_too_large_to_hand_over_costs_no_worker(gw):
    before = workers(gw)
    r = run(gw, "t3", "echo", {"text": "x" * (1536 * 1024)})
    body = assert_problem(r, 413, "body_too_large")
    assert "1 MiB" in body["detail"]
    assert workers(gw) == before
    assert run(gw, "t3", "echo", {"text": "abc"}).json()["output"] == 3


def test_a_worker_that_speaks_garbage_is_killed_not_the_gateway(tmp_path, monkeypatch):
    """A malformed frame (an unknown message type) from a worker: the
    gateway kills that worker, names it, and serves the next run."""
    defs = tmp_path / "defs"
    shutil.copytree(EXAMPLES, defs)
    add_template(defs, "babble", "function run(input, ctx) return 1 end\n")
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    monkeypatch.setenv("SANDGATE_TEST_GARBAGE_TEMPLATE", "babble")
    g = Gateway(data)
    g.keys = {"t1": make_key(data, "maker", tenant="t1")["key"]}
    g.start()
    try:
        r = run(g, "t1", "babble")
        body = assert_problem(r, 422, "sandbox_violation")
        doc = body["run"]
        assert doc["error"]["code"] == "worker_crashed", doc
        assert "protocol" in doc["error"]["message"], doc
        assert requests.get(g.url + "/healthz", timeout=5).status_code == 200
        ok = run(g, "t1", "onboard-contact", {"email": "ada@example.com", "name": "Ada"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["worker_pid"] != doc["worker_pid"]
    finally:
        g.assert_clean_exit(g.stop())


def add_key(gw, name, tenant, user, mode="sandbox"):
    """A key the running gateway has picked up (it polls the store)."""
    gw.keys[name] = make_key(gw.data_dir, "maker", mode=mode, tenant=tenant, user=user)["key"]
    assert wait_for(lambda: requests.get(gw.url + "/v1/me/usage", timeout=5, headers={
        "Authorization": "Bearer " + gw.keys[name]}).status_code == 200)


def test_a_worker_serves_one_user_in_one_mode(gw):
    # Two users of one tenant, and one of them in live mode too: a worker
    # holds what its runs left and acts with their credentials.  (Tenant t4:
    # a gateway that stops removes its tenants' cgroups, and the test above
    # stopped one that used t1.)
    add_key(gw, "t4/ann", "t4", "ann")
    add_key(gw, "t4/bob", "t4", "bob")
    add_key(gw, "t4/ann/live", "t4", "ann", mode="live")
    pids = {}
    order = ["t4/ann", "t4/ann", "t4/bob", "t4/ann", "t4/bob", "t4/ann/live", "t4/ann/live",
             "t4/bob", "t4/ann"]
    for who in order:
        r = run(gw, who, "trivial")
        assert r.status_code == 200, r.text
        pids.setdefault(who, []).append(r.json()["worker_pid"])
    # Back to back, a person's runs reuse their own worker: the pool still pools.
    assert pids["t4/ann"][0] == pids["t4/ann"][1], pids
    assert pids["t4/ann/live"][0] == pids["t4/ann/live"][1], pids
    owners = list(pids)
    for a in owners:
        for b in owners:
            if a != b:
                assert not set(pids[a]) & set(pids[b]), pids


def test_a_tenant_named_before_the_naming_rule_is_refused_plainly(tmp_path):
    """A key stored with a tenant the sandbox cannot take ("acme.com", from
    before keys create checked names) is refused at once with the reason;
    the keeper does not retry it (it logged a warning every 250 ms)."""
    defs = tmp_path / "defs"
    shutil.copytree(EXAMPLES, defs)
    add_template(defs, "trivial", "function run(input, ctx) return 1 end\n")
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    key = make_key(data, "maker", tenant="acme", user="ann")
    with sqlite3.connect(f"{data}/sandgate.db") as db:
        db.execute("UPDATE keys SET tenant = 'acme.com' WHERE id = ?", (key["id"],))
    g = Gateway(data)
    g.keys = {"old": key["key"]}
    g.start()
    try:
        assert_problem(run(g, "old", "trivial"), 503, "sandbox_unavailable")
        # The admin's log says why, once for the run.
        why = ('sandbox: cannot run a template: tenant "acme.com" cannot have sandbox '
               "workers: '.' at position 5 is not allowed; use 1 to 63 lowercase letters")
        assert wait_for(lambda: any(e.get("msg", "").startswith(why) for e in g.log_lines()))
        # A normal tenant's run after it is served, and the keeper tried nothing for it.
        g.keys["new"] = make_key(data, "maker", tenant="acme", user="ann")["key"]
        assert wait_for(lambda: run(g, "new", "trivial").status_code == 200, timeout=10)
        lines = [e.get("msg", "") for e in g.log_lines()]
        assert sum(m.startswith(why) for m in lines) == 1, lines
        assert not [m for m in lines if "preforking" in m or "acme.com" in m and
                    not m.startswith(why)], lines
    finally:
        g.assert_clean_exit(g.stop())
