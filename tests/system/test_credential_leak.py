"""A planted credential appears nowhere but in the upstream's request: not
in logs, problems, headers, metrics, /readyz, run documents, template
output, the audit, the CLI's output, or any byte of the data directory."""

import json
import os
import subprocess

import requests

from conftest import BIN, Gateway, audit, make_key, run_cli, wait_for
from mock_upstream import Upstream
from test_live import POLICY, connector

PLANTED = "sk_live_PLANTED_c0ffee_d00d_4b1d"

TEMPLATE = """kind: template
name: fetch-item
version: 1.0.0
description: Reads an item through the live connector and returns it.
input: { type: object, additionalProperties: false, properties: {} }
capabilities: ["shop.get_item"]
limits: { wall_time: 5s, cpu_time: 500ms, memory: 16MiB, instructions: 1000000, calls: 4 }
"""

SCRIPT = """function run(input, ctx)
  local item = ctx.call("shop.get_item", { id = "1" })
  ctx.log("got " .. item.name)
  local ok, err = pcall(ctx.call, "shop.get_item", { id = "broken" })
  return { name = item.name, second = ok and "ok" or tostring(err.code) }
end
"""


def test_the_planted_credential_appears_nowhere(tmp_path):
    up = Upstream().start()
    defs = tmp_path / "defs"
    for d in ("connectors", "policies", "templates/fetch-item"):
        (defs / d).mkdir(parents=True)
    (defs / "policies" / "roles.yaml").write_text(POLICY)
    (defs / "connectors" / "shop.yaml").write_text(connector("shop", up.url, timeout="500ms", connect_timeout="200ms"))
    (defs / "templates" / "fetch-item" / "template.yaml").write_text(TEMPLATE)
    (defs / "templates" / "fetch-item" / "main.lua").write_text(SCRIPT)
    data = str(tmp_path / "data")
    outputs = [run_cli("apply", "-f", str(defs), data_dir=data)]
    p = subprocess.run([BIN, "secrets", "set", "shop", "--stdin", "--data-dir", data],
                       input=PLANTED, text=True, capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    outputs.append(p)
    outputs.append(run_cli("secrets", "list", data_dir=data))
    outputs.append(run_cli("secrets", "list", "--json", data_dir=data))
    key = make_key(data, "builder", mode="live", user="ann")["key"]
    gw = Gateway(data).start()
    seen = []  # everything the gateway said to anyone but the upstream

    def keep(r):
        seen.append(json.dumps(dict(r.headers)) + r.text)
        return r

    def answer(req):
        if req["path"].endswith("/broken"):
            # The upstream echoes the credential back: the gateway must not pass it on.
            return 500, {"X-Echo": req["headers"].get("authorization", "")}, \
                {"error": req["headers"].get("authorization", "")}
        if req["path"].endswith("/echo"):
            # Off contract (no such member): refused whole, never passed on.
            return 200, {}, {"id": "1", "name": "x", "extra": req["headers"]["authorization"]}
        return 200, {}, {"id": "1", "name": "Lamp"}

    up.answer = answer
    try:
        h = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
        url = f"{gw.url}/v1/connectors/shop/get_item"
        assert keep(requests.post(url, json={"id": "1"}, headers=h, timeout=10)).status_code == 200
        assert keep(requests.post(url, json={"id": "broken"}, headers=h,
                                  timeout=10)).status_code == 502
        assert keep(requests.post(url, json={"id": "echo"}, headers=h,
                                  timeout=10)).status_code == 502
        keep(requests.post(url, json={"id": "../x"}, headers=h, timeout=10))
        up.release.clear()
        keep(requests.post(url, json={"id": "slow"}, headers=h, timeout=10))  # times out
        up.release.set()
        r = keep(requests.post(f"{gw.url}/v1/templates/fetch-item/runs", json={}, headers=h,
                               timeout=30))
        assert r.status_code == 200, r.text
        run = r.json()
        keep(requests.get(f"{gw.url}/v1/runs/{run['id']}", headers=h, timeout=10))
        keep(gw.get("/metrics"))
        keep(gw.get("/readyz"))
        keep(requests.get(f"{gw.url}/v1/me/usage", headers=h, timeout=10))
        # The upstream did get it: the plant is real.
        assert any(req["headers"].get("authorization") == "Bearer " + PLANTED
                   for req in up.requests)
        audit(data, "connector = 'shop'", until=lambda rows: len(rows) >= 6)
    finally:
        up.release.set()
        gw.assert_clean_exit(gw.stop())
        up.stop()
    for text in seen:
        assert PLANTED not in text, text[:2000]
    for p in outputs:
        assert PLANTED not in p.stdout + p.stderr
    assert PLANTED not in gw.log_text()
    for root, _, files in os.walk(tmp_path):
        for f in files:
            path = os.path.join(root, f)
            if path.startswith(str(defs)):
                continue
            with open(path, "rb") as fh:
                assert PLANTED.encode() not in fh.read(), path
