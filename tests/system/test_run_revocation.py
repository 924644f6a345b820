"""A run's ctx.calls are governed by the keys and policy that are live when
each call starts, not by those of the run's start: a key revoked, or a
permission removed, mid-run stops the run's next call as it stops the next
direct call.  Judged from the gateway's own audit rows, not client clocks."""

import os
import shutil
import sqlite3

import requests

from conftest import EXAMPLES, Gateway, make_key, run_cli, wait_for

SLOW = """\
kind: connector
name: slow
version: 1.0.0
description: A simulated upstream that takes 100 ms per call.
auth: none
environments:
  sandbox: { simulator: true, latency: 100ms }
  live: { simulator: true }
operations:
  echo:
    description: Echo a counter.
    method: POST
    path: /echo
    data_domain: public
    cost: 0
    input:
      type: object
      additionalProperties: false
      required: [i]
      properties: { i: { type: integer } }
    output:
      type: object
      required: [i]
      properties: { i: { type: integer } }
"""

LOOP_YAML = """\
kind: template
name: slow-loop
version: 1.0.0
description: Calls slow.echo n times, one after the other.
input:
  type: object
  additionalProperties: false
  required: [n]
  properties: { n: { type: integer, minimum: 1, maximum: 60 } }
capabilities: ["slow.echo"]
limits:
  wall_time: 20s
  cpu_time: 2s
  memory: 16MiB
  instructions: 10000000
  calls: 60
"""

LOOP_LUA = """\
function run(input, ctx)
  for i = 1, input.n do
    ctx.call("slow.echo", { i = i })
  end
  return { calls = input.n }
end
"""

CALLS = 60


def defs_dir(tmp_path):
    defs = tmp_path / "defs"
    shutil.copytree(EXAMPLES, defs, ignore=shutil.ignore_patterns("sandgate.yaml"))
    (defs / "connectors" / "slow.yaml").write_text(SLOW)
    tpl = defs / "templates" / "slow-loop"
    tpl.mkdir()
    (tpl / "template.yaml").write_text(LOOP_YAML)
    (tpl / "main.lua").write_text(LOOP_LUA)
    return defs


def start(tmp_path):
    defs = defs_dir(tmp_path)
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    info = make_key(data, "maker", user="looper")
    gw = Gateway(data).start()
    return defs, data, info, gw


def audit(data, where, args):
    with sqlite3.connect(os.path.join(data, "sandgate.db")) as con:
        return con.execute("SELECT ts_us - latency_us, decision, code, trace_id FROM decisions "
                           "WHERE " + where + " ORDER BY id", args).fetchall()


def run_in_background(gw, key):
    r = requests.post(f"{gw.url}/v1/templates/slow-loop/runs?wait=false", json={"n": CALLS},
                      headers={"Authorization": "Bearer " + key}, timeout=10)
    assert r.status_code == 202, r.text
    run = r.json()
    # The run's trace id names its calls in the audit.
    doc = gw.get(run["links"]["self"], key=key).json()
    return run["links"]["self"], doc["trace_id"]


def wait_for_calls(data, trace_id, n):
    assert wait_for(lambda: len(audit(data, "trace_id = ? AND decision = 'allowed'",
                                      (trace_id,))) >= n, timeout=20), "the run made no calls"


def refused_directly(gw, key, status, run_trace):
    """Calls directly until the gateway refuses; the audit row of that refusal."""
    def refused():
        return gw.post("slow", "echo", {"i": 0}, key=key).status_code == status
    assert wait_for(refused, timeout=10), "direct calls were never refused"
    rows = []
    assert wait_for(lambda: rows.extend(audit(
        gw.data_dir, "connector = 'slow' AND status = ? AND trace_id != ?",
        (status, run_trace))) or rows, timeout=10)
    return rows


def run_status(data, trace_id):
    with sqlite3.connect(os.path.join(data, "sandgate.db")) as con:
        row = con.execute("SELECT status FROM runs WHERE trace_id = ?", (trace_id,)).fetchone()
    return row[0] if row else None


def assert_run_stopped_by(data, trace_id, code, direct_refusal_start):
    assert wait_for(lambda: run_status(data, trace_id) is not None, timeout=30), \
        "the run did not end"
    assert run_status(data, trace_id) == "failed"
    calls = audit(data, "trace_id = ?", (trace_id,))
    allowed = [c for c in calls if c[1] == "allowed"]
    refused = [c for c in calls if c[1] != "allowed"]
    # The run stopped at its first refused call, well before its last.
    assert len(allowed) < CALLS and len(refused) == 1, calls
    assert refused[0][2] == code, refused
    # No call of the run that began after a direct call was refused was let through.
    late = [c for c in allowed if c[0] > direct_refusal_start]
    assert late == [], (late, direct_refusal_start)


def test_a_key_revoked_mid_run_stops_the_runs_next_call(tmp_path):
    _, data, info, gw = start(tmp_path)
    try:
        _, trace_id = run_in_background(gw, info["key"])
        wait_for_calls(data, trace_id, 2)
        run_cli("keys", "revoke", info["id"], data_dir=data)
        rows = refused_directly(gw, info["key"], 401, trace_id)
        assert rows[0][2] == "key_revoked", rows
        assert_run_stopped_by(data, trace_id, "key_revoked", rows[0][0])
    finally:
        gw.assert_clean_exit(gw.stop())


def test_a_permission_removed_mid_run_stops_the_runs_next_call(tmp_path):
    defs, data, info, gw = start(tmp_path)
    try:
        _, trace_id = run_in_background(gw, info["key"])
        wait_for_calls(data, trace_id, 2)
        roles = defs / "policies" / "roles.yaml"
        text = roles.read_text()
        # Makers may call everything in sandbox mode; now everything but slow.
        narrowed = text.replace('      - operations: ["*"]\n        modes: [sandbox]\n',
                                '      - operations: ["crm.*", "calendar.*", "mail.*"]\n'
                                '        modes: [sandbox]\n', 1)
        assert narrowed != text
        roles.write_text(narrowed)
        run_cli("apply", "-f", str(defs), data_dir=data)
        rows = refused_directly(gw, info["key"], 403, trace_id)
        assert rows[0][2] == "operation_not_allowed", rows
        assert_run_stopped_by(data, trace_id, "operation_not_allowed", rows[0][0])
    finally:
        gw.assert_clean_exit(gw.stop())
