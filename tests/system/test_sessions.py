"""Time-bound sessions against the real binary: starting one, its own limits,
grouped usage and traces, expiry, and who may see it."""

import json
import os
import sqlite3

import requests

from conftest import assert_problem, fresh_key, run_cli, wait_for

CONTACT = {"email": "ada@example.com", "name": "Ada"}


def post_session(gw, key, body, raw=None):
    h = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
    return requests.post(gw.url + "/v1/sessions", headers=h, timeout=10,
                         data=raw if raw is not None else json.dumps(body))


def start_session(gw, key, body):
    r = post_session(gw, key, body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["session"].startswith("sgs_") and out["id"] in out["session"]
    return out


def key_id(key):
    return key.split("_")[1]


def test_session_groups_calls_and_holds_its_own_limits(gateway):
    key = fresh_key(gateway, "admin")["key"]
    s = start_session(gateway, key, {"ttl": "10m", "limits": {"rate": "1/h", "burst": 2}})
    assert s["limits"] == {"rate": {"rate": "1/h", "burst": 2}}
    token = s["session"]
    ok = [gateway.post("crm", "create_contact", CONTACT, key=token) for _ in range(2)]
    assert [r.status_code for r in ok] == [200, 200]
    r = gateway.post("crm", "create_contact", CONTACT, key=token)
    body = assert_problem(r, 429, "rate_limited")
    assert body["violated-policies"][0]["policy"] == "session"
    assert r.headers["RateLimit"].startswith('"session";r=0;')
    # The key itself is not held to the session's limits.
    assert gateway.post("crm", "create_contact", CONTACT, key=key).status_code == 200

    shown = gateway.get(f"/v1/sessions/{s['id']}", key=key).json()
    assert shown["usage"]["calls"] == 2 and shown["usage"]["refused"] == 1
    assert abs(shown["usage"]["cost"] - 0.004) < 1e-9
    traces = [r.headers["traceparent"].split("-")[1] for r in ok]
    assert shown["traces"] == list(reversed(traces))
    assert shown["expired"] is False and 590 <= shown["seconds_left"] <= 600
    usage = gateway.get("/v1/me/usage", key=token).json()
    assert usage["session"]["id"] == s["id"] and usage["session"]["usage"]["calls"] == 2
    assert "session" not in gateway.get("/v1/me/usage", key=key).json()
    # The session's own token may look too; another key may not.
    assert gateway.get(f"/v1/sessions/{s['id']}", key=token).status_code == 200
    other = fresh_key(gateway, "admin")["key"]
    assert_problem(gateway.get(f"/v1/sessions/{s['id']}", key=other), 404, "route_not_found")

    # Calls made in the session are tagged with it in the audit store.
    db = os.path.join(gateway.data_dir, "sandgate.db")

    def tagged():
        con = sqlite3.connect(db)
        try:
            return con.execute("SELECT count(*) FROM decisions WHERE session_id = ?",
                               (s["id"],)).fetchone()[0]
        finally:
            con.close()
    assert wait_for(lambda: tagged() == 3)


def test_session_call_count_and_budget_run_out(gateway):
    key = fresh_key(gateway, "admin")["key"]
    s = start_session(gateway, key, {"ttl": "5m", "limits": {"max_calls": 2}})
    codes = [gateway.post("crm", "create_contact", CONTACT, key=s["session"]).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]
    # create_contact costs 0.002: a 0.003 budget pays for one call, in sandbox too.
    s = start_session(gateway, key, {"ttl": "5m", "budget": 0.003})
    assert gateway.post("crm", "create_contact", CONTACT, key=s["session"]).status_code == 200
    body = assert_problem(gateway.post("crm", "create_contact", CONTACT, key=s["session"]),
                          429, "session_spent")
    assert "has 0.0010 of its budget of 0.0030 left" in body["detail"]
    assert "Start a new session" in body["remediation"]


def test_expired_session_says_to_start_a_new_one(gateway):
    key = fresh_key(gateway, "explorer")["key"]
    # Expiry is kept in whole seconds: a 1 s session started late in a second
    # could be over before its first call.  2 s leaves at least one.
    s = start_session(gateway, key, {"ttl": "2s"})
    assert gateway.post("crm", "create_contact", CONTACT, key=s["session"]).status_code == 200
    assert wait_for(lambda: gateway.get(f"/v1/sessions/{s['id']}", key=key).json()["expired"],
                    timeout=10)
    body = assert_problem(gateway.post("crm", "create_contact", CONTACT, key=s["session"]),
                          401, "session_expired")
    assert "POST /v1/sessions" in body["remediation"]
    assert gateway.get(f"/v1/sessions/{s['id']}", key=key).json()["expired"] is True


def test_bad_session_requests_are_refused_clearly(gateway):
    key = fresh_key(gateway, "explorer")["key"]
    post = lambda k, b, raw=None: post_session(gateway, k, b, raw)
    body = assert_problem(post(key, {"ttl": "forever"}), 400, "request_invalid")
    assert "ttl must be a duration" in body["detail"]
    assert "1s to 24h" in assert_problem(post(key, {"ttl": "2d"}), 400, "request_invalid")["detail"]
    assert 'unknown member "color"' in assert_problem(post(key, {"color": 1}), 400,
                                                      "request_invalid")["detail"]
    assert 'limits: unknown member "rps"' in assert_problem(
        post(key, {"limits": {"rps": 1}}), 400, "request_invalid")["detail"]
    assert_problem(post(key, None, raw="{not json"), 400, "request_invalid")
    assert_problem(post(key, {"budget": -1}), 400, "request_invalid")
    s = start_session(gateway, key, {})
    assert_problem(post(s["session"], {}), 400, "request_invalid")
    assert_problem(gateway.post("crm", "create_contact", CONTACT,
                                key="sgs_0123456789abcdef_" + "A" * 43), 401, "session_unknown")
    # Revoking the key ends its sessions.
    run_cli("keys", "revoke", key_id(key), data_dir=gateway.data_dir)
    assert wait_for(lambda: gateway.post("crm", "create_contact", CONTACT,
                                         key=s["session"]).status_code == 401)


def test_starting_sessions_spends_the_keys_own_limit(gateway):
    # explorer: 2/s with bursts of 3.  5,000 sessions in a second were possible before.
    key = fresh_key(gateway, "explorer")["key"]
    first = post_session(gateway, key, {})
    assert first.status_code == 201, first.text
    assert first.headers["RateLimit"].startswith('"explorer:sandbox";r='), first.headers
    assert first.headers["RateLimit-Policy"] == '"explorer:sandbox";q=3;w=2'
    # Six starts would need 1.5 s to pass unrefused: far more than six replies take.
    replies = [first] + [post_session(gateway, key, {}) for _ in range(5)]
    codes = [r.status_code for r in replies]
    assert codes[:3] == [201, 201, 201] and 429 in codes, codes
    refused = replies[codes.index(429)]
    body = assert_problem(refused, 429, "rate_limited")
    assert body["detail"] == ('limit "explorer:sandbox" allows 2/s with bursts of 3 for each '
                              'API key, and starting a session counts as one call; this one '
                              'would exceed it'), body
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit"].startswith('"explorer:sandbox";r=0;')
    # Its own bucket: the key's connector calls are not spent by starting sessions.
    assert gateway.post("crm", "create_contact", CONTACT, key=key).status_code == 200


def test_live_sessions_per_key_are_capped(gateway):
    key = fresh_key(gateway, "admin")["key"]  # 50/s, bursts of 100: only the cap binds
    started = [start_session(gateway, key, {"ttl": "10m"}) for _ in range(10)]
    assert [s["sessions_running"] for s in started] == list(range(1, 11))
    assert all(s["sessions_max"] == 10 for s in started)
    r = post_session(gateway, key, {"ttl": "10m"})
    body = assert_problem(r, 429, "session_limit")
    assert body["detail"].startswith("this API key has 10 sessions running and may have at "
                                     "most 10 at once; the next one expires in "), body
    assert "DELETE /v1/sessions/ID" in body["remediation"]
    assert 590 <= int(r.headers["Retry-After"]) <= 600
    assert "RateLimit" not in r.headers
    # Another key of the same user is counted on its own.
    other = fresh_key(gateway, "admin")["key"]
    start_session(gateway, other, {})
    # Ending one makes room at once, and its token stops working.
    gone = started[3]
    h = {"Authorization": "Bearer " + key}
    ended = requests.delete(f"{gateway.url}/v1/sessions/{gone['id']}", headers=h, timeout=10)
    assert ended.status_code == 200, ended.text
    assert ended.json()["expired"] is True and ended.json()["seconds_left"] == 0
    assert_problem(gateway.post("crm", "create_contact", CONTACT, key=gone["session"]), 401,
                   "session_expired")
    assert start_session(gateway, key, {})["sessions_running"] == 10
    assert_problem(post_session(gateway, key, {}), 429, "session_limit")
    # Only the key that started a session may end it.
    assert_problem(requests.delete(f"{gateway.url}/v1/sessions/{started[0]['id']}",
                                   headers={"Authorization": "Bearer " + other}, timeout=10),
                   404, "route_not_found")
    put = requests.put(f"{gateway.url}/v1/sessions/{started[0]['id']}", headers=h, timeout=10)
    assert_problem(put, 405, "method_not_allowed")
    assert put.headers["Allow"] == "GET, DELETE"


def test_expired_sessions_do_not_count(gateway):
    key = fresh_key(gateway, "admin")["key"]
    for _ in range(10):
        start_session(gateway, key, {"ttl": "1s"})
    r = post_session(gateway, key, {"ttl": "1s"})
    assert_problem(r, 429, "session_limit")
    assert int(r.headers["Retry-After"]) <= 1
    # Once they expire, the key may start sessions again (the gateway's clock decides).
    assert wait_for(lambda: post_session(gateway, key, {}).status_code == 201, timeout=10)
