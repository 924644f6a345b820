"""Refusals made early in the path: what they say about the caller's class,
and that they are audited like any other decision."""

from conftest import CONTACT_MIN, assert_problem


def test_an_early_refusal_carries_the_roles_default_class(gateway):
    # explorer has no priority section: its default class is normal.
    r = gateway.post("crm", "create_contact", raw="{not json", key=gateway.keys["explorer"])
    assert_problem(r, 400, "malformed_json")
    assert r.headers["Sandgate-Priority"] == "normal"
    r = gateway.post("crm", "no_such_op", CONTACT_MIN, key=gateway.keys["explorer"])
    assert_problem(r, 404, "operation_not_found")
    assert r.headers["Sandgate-Priority"] == "normal"


def test_a_refusal_before_the_caller_is_known_names_no_class(gateway):
    r = gateway.post("crm", "create_contact", raw="{not json", key="sgk_nope")
    assert_problem(r, 401, "key_malformed")
    assert "Sandgate-Priority" not in r.headers
