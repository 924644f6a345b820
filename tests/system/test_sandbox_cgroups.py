"""Per-tenant cgroup ceilings on this machine, for real (cgroup v1 here): a
memory hog is stopped at the tenant's memory ceiling, a fork is refused, and
one tenant's CPU hog neither gets more than its CPU share nor slows another
tenant's runs beyond a stated bound.  Each test starts its own gateway with
the ceilings it needs."""

import datetime
import json
import os
import shutil
import statistics
import threading
import time

import pytest
import requests

from conftest import EXAMPLES, Gateway, make_key, run_cli, wait_for

HOGS = {
    # Strings kept alive until the worker's cgroup runs out: the template's
    # own memory limit (1 GiB) is far above the tenant ceiling.
    "mem-hog": ("memory: 1GiB\n  wall_time: 20s\n  cpu_time: 20s\n  instructions: 1000000000000",
                """
function run(input, ctx)
  local keep, s = {}, string.rep("x", 1024 * 1024)
  for i = 1, 100000 do keep[i] = s .. i end
  return #keep
end"""),
    # Pure computation for as long as the wall clock allows.
    "cpu-hog": ("wall_time: 1500ms\n  cpu_time: 10s\n  instructions: 1000000000000",
                """
function run(input, ctx)
  local x = 0
  while true do x = x + 1 end
end"""),
    "trivial": ("wall_time: 2s", "function run(input, ctx) return 1 end"),
    "fork-attempt": ("wall_time: 2s", "function run(input, ctx) return 1 end"),
}


def write_template(root, name, limits, lua):
    d = os.path.join(root, "templates", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "template.yaml"), "w") as f:
        f.write(f"kind: template\nname: {name}\nversion: 1.0.0\n"
                f"description: A cgroup test template.\ninput: {{type: object}}\n"
                f"capabilities: []\nlimits:\n  {limits}\n")
    with open(os.path.join(d, "main.lua"), "w") as f:
        f.write(lua.lstrip() + "\n")


@pytest.fixture(scope="module")
def defs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cgroup-defs")
    shutil.copytree(EXAMPLES, root / "defs")
    for name, (limits, lua) in HOGS.items():
        write_template(str(root / "defs"), name, limits, lua)
    return str(root / "defs")


def start_gateway(tmp_path, defs, config, env=None):
    data = str(tmp_path / "data")
    run_cli("apply", "-f", defs, data_dir=data)
    cfg = tmp_path / "sandgate.yaml"
    cfg.write_text(config)
    keys = {t: make_key(data, "maker", tenant=t)["key"] for t in ("acme", "globex")}
    gw = Gateway(data, config=str(cfg))
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        gw.start()
    finally:
        os.environ.clear()
        os.environ.update(old)
    gw.keys = keys
    return gw


def run(gw, key, name, timeout=30):
    return requests.post(f"{gw.url}/v1/templates/{name}/runs", data="{}", timeout=timeout,
                         headers={"Authorization": "Bearer " + key,
                                  "Content-Type": "application/json"})


def test_memory_hog_is_stopped_at_the_tenant_ceiling(tmp_path, defs):
    gw = start_gateway(tmp_path, defs, "sandbox:\n  tenant_memory: 64MiB\n"
                                       "  worker_memory: 2GiB\n  prefork: 0\n")
    try:
        r = run(gw, gw.keys["acme"], "mem-hog")
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["code"] == "template_limit", body
        doc = body["run"]
        assert doc["stopped_by"]["limit"] == "tenant_memory", doc
        assert doc["stopped_by"]["value"] == 64 * 1024 * 1024
        assert "sandbox.tenant_memory" in doc["stopped_by"]["remediation"]
        # The gateway and the tenant's next run are fine.
        assert run(gw, gw.keys["acme"], "trivial").status_code == 200
    finally:
        gw.assert_clean_exit(gw.stop())


def test_a_fork_attempt_is_refused_and_only_its_worker_dies(tmp_path, defs):
    gw = start_gateway(tmp_path, defs, "sandbox:\n  tenant_pids: 4\n",
                       env={"SANDGATE_TEST_FORK_TEMPLATE": "fork-attempt"})
    try:
        r = run(gw, gw.keys["acme"], "fork-attempt")
        assert r.status_code == 422, r.text
        doc = r.json()["run"]
        assert doc["error"]["code"] == "forbidden_syscall", doc
        # Only that worker died: the other tenant, and the gateway, carry on.
        ok = run(gw, gw.keys["globex"], "trivial")
        assert ok.status_code == 200 and ok.json()["output"] == 1
        again = run(gw, gw.keys["acme"], "trivial")
        assert again.status_code == 200, again.text
        assert again.json()["worker_pid"] != doc["worker_pid"]
    finally:
        gw.assert_clean_exit(gw.stop())


def timed_runs(gw, key, n):
    """n trivial runs one after another: the client's latency of each, and
    the run documents, with the gateway's own figures."""
    out, docs = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        r = run(gw, key, "trivial")
        out.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
        docs.append(r.json())
    return out, docs


def run_interval(doc):
    """When a run held its worker, by the gateway's clock, in seconds."""
    t = lambda s: datetime.datetime.fromisoformat(s).timestamp()
    return t(doc["started_at"]), t(doc["ended_at"])


def workers(gw):
    return gw.get("/readyz").json()["sandbox"]["workers"]


def test_one_tenants_cpu_hog_keeps_to_its_share(tmp_path, defs):
    """acme hogs the CPU with two runs at once under a 20% ceiling.  acme's
    runs get at most about a fifth of a CPU between them (the cgroup's own
    accounting), and globex's trivial runs made while both hogs ran take no
    more than 3x their quiet median, plus 50 ms: the slack a shared machine
    needs, judged first from the gateway's own wall_ms of each run, then
    from the client's clock."""
    gw = start_gateway(tmp_path, defs, "sandbox:\n  tenant_cpu_percent: 20\n")
    try:
        timed_runs(gw, gw.keys["globex"], 10)  # warm: workers made, caches hot
        quiet_client, quiet = timed_runs(gw, gw.keys["globex"], 40)
        hogs = []
        threads = [threading.Thread(target=lambda: hogs.append(run(gw, gw.keys["acme"],
                                                                     "cpu-hog")))
                   for _ in range(2)]
        for t in threads:
            t.start()
        # Both hogs hold a worker before globex starts measuring.
        assert wait_for(lambda: workers(gw)["busy"] >= 2, timeout=10), workers(gw)
        busy_client, busy = timed_runs(gw, gw.keys["globex"], 40)
        for t in threads:
            t.join()
        cpu = 0.0
        hog_docs = [r.json()["run"] for r in hogs]
        for doc in hog_docs:
            assert doc["stopped_by"]["limit"] == "wall_time", doc
            cpu += doc["usage"]["cpu_ms"]
        # Two runs of 1.5 s at a 20% ceiling: about 300 ms of CPU, never near 3 s.
        assert cpu < 600, cpu
        # The globex runs that ran wholly while both hogs did.
        start = max(run_interval(d)[0] for d in hog_docs)
        end = min(run_interval(d)[1] for d in hog_docs)
        during = [d for d in busy if start <= run_interval(d)[0] and run_interval(d)[1] <= end]
        assert during, "no globex run overlapped both hogs"
        quiet_ms = statistics.median(d["usage"]["wall_ms"] for d in quiet)
        busy_ms = statistics.median(d["usage"]["wall_ms"] for d in during)
        print(f"globex runs: {quiet_ms:.1f} ms quiet, {busy_ms:.1f} ms in {len(during)} runs "
              f"beside the hogs; client {statistics.median(quiet_client) * 1e3:.1f} ms "
              f"quiet, {statistics.median(busy_client) * 1e3:.1f} ms busy; hogs' cpu {cpu:.0f} ms")
        assert busy_ms <= 3 * quiet_ms + 50, (quiet_ms, busy_ms)
        quiet_s, busy_s = statistics.median(quiet_client), statistics.median(busy_client)
        assert busy_s <= 3 * quiet_s + 0.05, (quiet_s, busy_s)
    finally:
        gw.assert_clean_exit(gw.stop())
