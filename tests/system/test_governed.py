"""The governed path, one refusal per test: each asserts status, code and text."""

import json

import jsonschema
import requests

from conftest import assert_problem, fresh_key

CONTACT = {"email": "ada@example.com", "name": "Ada Lovelace", "company": "Analytical Engines"}


def output_schema(gw, key, connector, op):
    cat = gw.get("/v1/catalog", key=key).json()
    for c in cat["connectors"]:
        if c["name"] == connector:
            for o in c["operations"]:
                if o["name"] == op:
                    return o["output"]
    raise AssertionError(f"{connector}.{op} not in the catalog")


def test_allowed_call_returns_schema_valid_output(gateway):
    key = gateway.keys["power"]
    r = gateway.post("crm", "create_contact", CONTACT, key=key)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    out = r.json()
    jsonschema.validate(out, output_schema(gateway, key, "crm", "create_contact"))
    # The simulator echoes what it was given and fills in the rest.
    assert out["email"] == CONTACT["email"]
    assert out["name"] == CONTACT["name"]
    assert out["company"] == CONTACT["company"]
    assert out["id"] and out["created_at"]


def test_simulator_is_deterministic_per_input(gateway):
    key = gateway.keys["power"]
    a = gateway.post("crm", "create_contact", CONTACT, key=key).json()
    b = gateway.post("crm", "create_contact", CONTACT, key=key).json()
    c = gateway.post("crm", "create_contact", dict(CONTACT, name="Grace Hopper"), key=key).json()
    assert a == b
    assert a["id"] != c["id"]


# One valid input per demo operation.  A new operation without an entry here
# fails the test below, so the table cannot silently fall behind the catalog.
VALID_INPUTS = {
    ("crm", "create_contact"): CONTACT,
    ("crm", "get_contact"): {"id": "ct_8f2k1x"},
    ("crm", "list_contacts"): {"limit": 5},
    ("mail", "send"): {"to": ["ada@example.com"], "subject": "Hello", "body": "Hi"},
    ("mail", "get_status"): {"message_id": "msg_5k2p9d7a"},
    ("calendar", "create_event"): {"title": "Review", "starts_at": "2026-01-05T10:00:00Z",
                                   "ends_at": "2026-01-05T11:00:00Z"},
    ("calendar", "list_events"): {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"},
    ("calendar", "list_holidays"): {"country": "DE", "year": 2026},
}


def test_every_operation_of_every_connector_answers_valid_output(gateway):
    key = gateway.keys["power"]
    cat = gateway.get("/v1/catalog", key=key).json()
    assert len(cat["connectors"]) >= 3
    seen = set()
    for c in cat["connectors"]:
        for op in c["operations"]:
            target = (c["name"], op["name"])
            assert target in VALID_INPUTS, f"add a valid input for {target}"
            seen.add(target)
            body = VALID_INPUTS[target]
            jsonschema.validate(body, op["input"])
            r = gateway.post(c["name"], op["name"], body, key=key)
            assert r.status_code == 200, (target, body, r.text)
            jsonschema.validate(r.json(), op["output"])
    assert seen == set(VALID_INPUTS)


def test_no_key_is_401(gateway):
    r = gateway.post("crm", "create_contact", CONTACT)
    body = assert_problem(r, 401, "key_missing")
    assert "Authorization" in body["remediation"]


def test_malformed_key_is_401(gateway):
    r = gateway.post("crm", "create_contact", CONTACT, key="not-a-key")
    assert_problem(r, 401, "key_malformed")
    r = gateway.post("crm", "create_contact", CONTACT, headers={"Authorization": "Basic abc"})
    assert_problem(r, 401, "key_malformed")


def test_unknown_key_is_401(gateway):
    real = gateway.keys["power"]
    forged = real[:-1] + ("A" if real[-1] != "A" else "B")
    body = assert_problem(gateway.post("crm", "create_contact", CONTACT, key=forged), 401,
                          "key_unknown")
    assert "admin" in body["remediation"]


def test_expired_key_is_401(gateway):
    from conftest import wait_for
    info = fresh_key(gateway, "maker", ttl="1s")
    # Wait for the gateway to say so (usage spends no quota), not a guess at how long.
    assert wait_for(lambda: gateway.get("/v1/me/usage", key=info["key"]).status_code == 401,
                    timeout=10)
    body = assert_problem(gateway.post("crm", "create_contact", CONTACT, key=info["key"]), 401,
                          "key_expired")
    assert "new key" in body["remediation"]


def test_revoked_key_is_401_within_a_second(gateway):
    from conftest import run_cli, wait_for
    info = fresh_key(gateway, "maker")
    assert gateway.post("crm", "create_contact", CONTACT, key=info["key"]).status_code == 200
    run_cli("keys", "revoke", info["id"], data_dir=gateway.data_dir)
    assert wait_for(lambda: gateway.post("crm", "create_contact", CONTACT,
                                         key=info["key"]).status_code == 401, timeout=3)
    body = assert_problem(gateway.post("crm", "create_contact", CONTACT, key=info["key"]), 401,
                          "key_revoked")
    assert info["id"] in body["detail"]


def test_operation_not_allowed_is_403(gateway):
    # The explorer may use mail.send but nothing else of mail.
    cat = gateway.get("/v1/catalog", key=gateway.keys["power"]).json()
    mail_ops = [o["name"] for c in cat["connectors"] if c["name"] == "mail" for o in c["operations"]]
    other = [o for o in mail_ops if o != "send"]
    assert other, "the mail connector needs a second operation for this test"
    body = assert_problem(gateway.post("mail", other[0], {}, key=gateway.keys["explorer"]), 403,
                          "operation_not_allowed")
    assert "explorer" in body["detail"] and f"mail.{other[0]}" in body["detail"]


def test_explorer_live_mode_is_403(gateway):
    body = assert_problem(gateway.post("crm", "create_contact", CONTACT,
                                       key=gateway.keys["explorer_live"]), 403, "mode_not_allowed")
    assert "live" in body["detail"]


def test_invalid_input_is_400_with_pointer(gateway):
    r = gateway.post("crm", "create_contact", {"name": 42, "extra": True},
                     key=gateway.keys["power"])
    body = assert_problem(r, 400, "invalid_input")
    pointers = {e["pointer"] for e in body["errors"]}
    assert "/email" in pointers        # missing required
    assert "/name" in pointers         # wrong type
    assert "/extra" in pointers        # additionalProperties: false
    for e in body["errors"]:
        assert e["message"]


def test_invalid_nested_value_points_into_array(gateway):
    r = gateway.post("mail", "send", {"to": ["ok@example.com", 7], "subject": "hi", "body": "x"},
                     key=gateway.keys["power"])
    body = assert_problem(r, 400, "invalid_input")
    assert "/to/1" in {e["pointer"] for e in body["errors"]}


def test_unknown_connector_is_404_with_hint(gateway):
    body = assert_problem(gateway.post("crmm", "create_contact", CONTACT,
                                       key=gateway.keys["power"]), 404, "connector_not_found")
    assert 'did you mean "crm"' in body["detail"]


def test_unknown_operation_is_404(gateway):
    body = assert_problem(gateway.post("crm", "create_contakt", CONTACT,
                                       key=gateway.keys["power"]), 404, "operation_not_found")
    assert 'did you mean "create_contact"' in body["detail"]


def test_unknown_route_is_problem_404(gateway):
    assert_problem(gateway.get("/v2/nothing"), 404, "route_not_found")
    assert_problem(gateway.get("/v1/connectors/crm"), 404, "route_not_found")


def test_wrong_method_is_405(gateway):
    r = requests.get(gateway.url + "/v1/connectors/crm/create_contact", timeout=5)
    assert_problem(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "POST"


def test_wrong_content_type_is_415(gateway):
    r = gateway.post("crm", "create_contact", raw="email=a", key=gateway.keys["power"],
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_problem(r, 415, "unsupported_media_type")


def test_malformed_json_is_400_and_server_stays_up(gateway):
    r = gateway.post("crm", "create_contact", raw='{"email": "a@b.c", "name": ', key=gateway.keys["power"])
    body = assert_problem(r, 400, "malformed_json")
    assert "line 1" in body["detail"]
    r = gateway.post("crm", "create_contact", raw='{"email":"a@b.c","email":"x@y.z","name":"n"}',
                     key=gateway.keys["power"])
    assert_problem(r, 400, "malformed_json")  # duplicate keys are ambiguous, so refused
    assert gateway.get("/healthz").status_code == 200


def test_oversized_body_is_413(gateway):
    big = json.dumps({"email": "a@b.c", "name": "x" * (1024 * 1024 + 10)})
    r = gateway.post("crm", "create_contact", raw=big, key=gateway.keys["power"])
    body = assert_problem(r, 413, "body_too_large")
    assert "limit" in body["detail"]
    # Far beyond the limit the transport refuses before reading; still 413, still alive.
    try:
        r = gateway.post("crm", "create_contact", raw="x" * (8 * 1024 * 1024),
                         key=gateway.keys["power"])
        assert r.status_code == 413
    except requests.ConnectionError:
        pass  # the server may close while the client is still sending
    assert gateway.get("/healthz").status_code == 200


def test_ten_thousand_deep_nesting_is_refused(gateway):
    deep = "[" * 10000 + "]" * 10000
    r = gateway.post("crm", "create_contact", raw=deep, key=gateway.keys["power"])
    assert_problem(r, 400, "nested_too_deeply")
    deep_obj = '{"a":' * 10000 + "1" + "}" * 10000
    r = gateway.post("crm", "create_contact", raw=deep_obj, key=gateway.keys["power"])
    assert_problem(r, 400, "nested_too_deeply")
    # Within jansson's own cap but past ours: still refused by our depth check.
    r = gateway.post("crm", "create_contact", raw="[" * 100 + "]" * 100, key=gateway.keys["power"])
    assert_problem(r, 400, "nested_too_deeply")
    assert gateway.get("/healthz").status_code == 200


def test_traceparent_is_continued_and_echoed(gateway):
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    r = gateway.post("crm", "create_contact", CONTACT, key=gateway.keys["power"],
                     headers={"traceparent": tp})
    assert r.headers["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert not r.headers["traceparent"].endswith("00f067aa0ba902b7-01")
    r = gateway.post("nope", "x", {}, key=gateway.keys["power"], headers={"traceparent": "junk"})
    body = r.json()
    assert r.headers["traceparent"].split("-")[1] == body["trace_id"]
    assert body["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736"


def test_error_details_do_not_leak_internals(gateway):
    probes = [
        gateway.post("crm", "create_contact", raw="{", key=gateway.keys["power"]),
        gateway.post("crm%00", "x", {}, key=gateway.keys["power"]),
        gateway.post("crm", "create_contact", {"email": 1}, key=gateway.keys["power"]),
        gateway.post("crm", "create_contact", CONTACT, key="sgk_0000000000000000_" + "A" * 43),
    ]
    for r in probes:
        text = r.text
        for leak in ("/tmp", "sqlite", "SQL", ".c:", "0x", gateway.data_dir):
            assert leak not in text, (leak, text)
