"""The template-run API around the runs themselves: what the catalog offers,
refusals before a worker is taken, the audit trail of a run's calls under
its trace, and runs read back from the store after a restart."""

import os
import sqlite3

import requests

from conftest import CONTACT_MIN, assert_problem, wait_for


def start_run(gw, key, name, body, query=""):
    return requests.post(f"{gw.url}/v1/templates/{name}/runs{query}", json=body, timeout=30,
                         headers={"Authorization": "Bearer " + key})


def test_catalog_lists_the_templates_a_role_may_run(gateway):
    cat = gateway.get("/v1/catalog", key=gateway.keys["explorer"]).json()
    names = {t["name"]: t for t in cat["templates"]}
    t = names["onboard-contact"]
    assert t["capabilities"] == ["crm.create_contact", "mail.send"]
    assert t["limits"]["wall_time_ms"] == 2000 and t["limits"]["calls"] == 4
    assert t["input"]["required"] == ["email", "name"]


def test_refusals_before_a_worker_is_taken(gateway):
    key = gateway.keys["explorer"]
    assert_problem(start_run(gateway, key, "no-such-template", {}), 404, "template_not_found")
    body = assert_problem(start_run(gateway, key, "onboard-contact", {"email": 5}), 400,
                          "invalid_input")
    assert {e["pointer"] for e in body["errors"]} >= {"/email", "/name"}
    r = requests.get(f"{gateway.url}/v1/templates/onboard-contact/runs", timeout=10,
                     headers={"Authorization": "Bearer " + key})
    assert_problem(r, 405, "method_not_allowed")
    assert_problem(start_run(gateway, "sgk_nope", "onboard-contact", CONTACT_MIN), 401,
                   "key_malformed")
    assert_problem(gateway.get("/v1/runs/run_0123abc", key=key), 404, "run_unknown")


def test_every_call_of_a_run_is_audited_under_its_trace(gateway):
    key = gateway.keys["power"]
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    r = requests.post(f"{gateway.url}/v1/templates/onboard-contact/runs", json=CONTACT_MIN,
                      timeout=30, headers={"Authorization": "Bearer " + key, "traceparent": tp})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert doc["trace_id"] in r.headers["traceparent"]
    spans = {c["span_id"] for c in doc["calls"]}
    assert len(spans) == 2 and all(len(s) == 16 for s in spans)
    db = os.path.join(gateway.data_dir, "sandgate.db")

    def audited():
        with sqlite3.connect(db) as con:
            rows = con.execute("SELECT connector, operation, decision FROM decisions "
                               "WHERE trace_id = ? ORDER BY id", (doc["trace_id"],)).fetchall()
        return rows if len(rows) == 2 else None
    assert wait_for(audited, timeout=5)
    assert audited() == [("crm", "create_contact", "allowed"), ("mail", "send", "allowed")]


def test_runs_survive_a_restart(own_gateway):
    # Its own gateway: it restarts it.
    key = own_gateway.keys["power"]
    r = start_run(own_gateway, key, "onboard-contact", CONTACT_MIN, "?wait=false")
    assert r.status_code == 202, r.text
    link = r.json()["links"]["self"]
    assert r.headers["Location"] == link

    def finished():
        doc = own_gateway.get(link, key=key).json()
        return doc if doc["status"] != "running" else None
    done = wait_for(finished, timeout=10)
    assert done
    before = own_gateway.get(link, key=key).json()
    own_gateway.assert_clean_exit(own_gateway.stop())
    own_gateway.start()
    after = own_gateway.get(link, key=key)
    assert after.status_code == 200, after.text
    assert after.json() == before
