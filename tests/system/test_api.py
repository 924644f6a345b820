"""The read-only API, operator endpoints, logs and the audit record."""

import os
import sqlite3
import time

from conftest import CONTACT_MIN, assert_problem, wait_for


def test_catalog_shows_only_what_the_role_may_use(gateway):
    cat = gateway.get("/v1/catalog", key=gateway.keys["explorer"]).json()
    assert cat["principal"]["role"] == "explorer"
    assert cat["principal"]["mode"] == "sandbox"
    names = {c["name"]: [o["name"] for o in c["operations"]] for c in cat["connectors"]}
    assert "create_contact" in names["crm"] and "get_contact" in names["crm"]
    assert names["mail"] == ["send"]
    assert "calendar" not in names
    op = [o for o in cat["connectors"][0]["operations"]][0]
    for member in ("input", "output", "method", "data_domain", "cost"):
        assert member in op


def test_catalog_needs_a_key(gateway):
    assert_problem(gateway.get("/v1/catalog"), 401, "key_missing")


def test_maker_sees_more_than_explorer(gateway):
    maker = gateway.get("/v1/catalog", key=gateway.keys["maker"]).json()
    explorer = gateway.get("/v1/catalog", key=gateway.keys["explorer"]).json()
    count = lambda c: sum(len(x["operations"]) for x in c["connectors"])
    assert count(maker) > count(explorer)


def test_healthz_and_readyz(gateway):
    r = gateway.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "alive"
    r = gateway.get("/readyz")
    body = r.json()
    assert r.status_code == 200 and body["status"] == "ready"
    assert body["checks"]["store"]["ok"] is True
    assert body["checks"]["snapshot"]["ok"] is True
    assert body["checks"]["snapshot"]["connectors"] >= 3


def metric(text, name, labels=""):
    for line in text.splitlines():
        if line.startswith(name + labels + " ") or (labels and line.startswith(name + labels)):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_count_requests(gateway):
    before = gateway.get("/metrics").text
    assert "# TYPE sandgate_request_duration_seconds histogram" in before
    key = gateway.keys["power"]
    gateway.post("crm", "create_contact", CONTACT_MIN, key=key)
    gateway.post("crm", "nope", {}, key=gateway.keys["explorer"])
    after = gateway.get("/metrics").text
    lbl = '{connector="crm",status="200"}'
    assert (metric(after, "sandgate_requests_total", lbl) or 0) >= (metric(before, "sandgate_requests_total", lbl) or 0) + 1
    for name in ("sandgate_throttled_total", "sandgate_denied_total", "sandgate_in_flight_requests",
                 'sandgate_request_duration_seconds_bucket{le="+Inf"}'):
        assert name in after
    assert metric(after, "sandgate_decisions_total", '{decision="not_found"}') >= 1


def test_one_json_log_line_per_request(gateway):
    tp = "00-11111111111111111111111111111111-2222222222222222-01"
    gateway.post("crm", "create_contact", CONTACT_MIN, key=gateway.keys["power"],
                 headers={"traceparent": tp})
    def found():
        return [l for l in gateway.log_lines() if l.get("trace_id") == "1" * 32]
    assert wait_for(lambda: len(found()) == 1)
    line = found()[0]
    for field in ("ts", "trace_id", "tenant", "user", "connector", "operation", "status",
                  "latency_us", "decision", "queue_wait_us"):
        assert field in line, line
    assert line["queue_wait_us"] == 0  # it never waited for a turn
    assert line["connector"] == "crm" and line["status"] == 200 and line["decision"] == "allowed"
    assert line["tenant"] == gateway.tenant


def test_decisions_are_recorded_with_reasons(gateway):
    tp = "00-33333333333333333333333333333333-2222222222222222-01"
    gateway.post("crm", "create_contact", {"name": 5}, key=gateway.keys["power"],
                 headers={"traceparent": tp})
    db = os.path.join(gateway.data_dir, "sandgate.db")

    def row():
        con = sqlite3.connect(db, timeout=5)
        try:
            return con.execute("SELECT decision, status, code, reason, tenant, connector "
                               "FROM decisions WHERE trace_id = ?", ("3" * 32,)).fetchone()
        finally:
            con.close()
    assert wait_for(lambda: row() is not None, timeout=5)
    decision, status, code, reason, tenant, connector = row()
    assert (decision, status, code, tenant, connector) == ("invalid", 400, "invalid_input",
                                                         gateway.tenant, "crm")
    assert "/email" in reason or "/name" in reason
