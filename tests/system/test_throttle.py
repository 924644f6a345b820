"""Rate limiting as a client sees it: burst, 429, headers, and recovery."""

import math
import re
import time

from conftest import assert_problem, fresh_key

CONTACT = {"email": "ada@example.com", "name": "Ada"}

# These tests look at refusals themselves, so calls over a limit are refused
# at once instead of waiting for a turn (test_limits covers the queue).
GATEWAY_CONFIG = "throttle:\n  queue_wait: 0s\n"
SF_ITEM = re.compile(r'^"(?P<name>[a-z0-9_:-]+)";(?P<params>.+)$')


def parse_sf(value):
    """A one-item RateLimit / RateLimit-Policy field into (name, {param: int})."""
    m = SF_ITEM.match(value)
    assert m, value
    params = {}
    for part in m.group("params").split(";"):
        k, v = part.split("=")
        params[k] = int(v)
    return m.group("name"), params


def explorer_limit(gw, key):
    """The explorer role's own window for crm, as /v1/me/usage reports it."""
    usage = gw.get("/v1/me/usage", key=key).json()
    for lim in usage["limits"]:
        if lim["policy"] == "explorer:sandbox" and lim.get("connector") == "crm":
            assert lim["who"] == "api_key" and lim["counts"] == "connector"
            return lim["windows"][0]
    raise AssertionError(usage)


def test_burst_then_429_with_headers_then_admitted_after_waiting(gateway):
    key = fresh_key(gateway, "explorer")["key"]
    limit = explorer_limit(gateway, key)
    burst = limit["burst"]
    assert burst <= 5, "the explorer should have a low burst"

    seen = []
    for _ in range(burst):
        r = gateway.post("crm", "create_contact", CONTACT, key=key)
        assert r.status_code == 200, r.text
        seen.append(r)
    # Every governed response carries both fields, in draft-11 syntax.
    name, pol = parse_sf(seen[0].headers["RateLimit-Policy"])
    assert name == "explorer:sandbox" and pol["q"] == burst and pol["w"] >= 1
    remaining = [parse_sf(r.headers["RateLimit"])[1]["r"] for r in seen]
    assert remaining[-1] == 0
    assert remaining == sorted(remaining, reverse=True)

    r = gateway.post("crm", "create_contact", CONTACT, key=key)
    body = assert_problem(r, 429, "rate_limited")
    assert body["type"].endswith("#quota-exceeded")
    retry = int(r.headers["Retry-After"])
    per_call = 1.0 / limit["per_second"]
    # The wait is at most one emission interval, rounded up to whole seconds.
    assert 1 <= retry <= max(1, math.ceil(per_call))
    _, rl = parse_sf(r.headers["RateLimit"])
    assert rl["r"] == 0 and rl["t"] >= 1

    time.sleep(retry)
    r = gateway.post("crm", "create_contact", CONTACT, key=key)
    assert r.status_code == 200, r.text


def test_limits_are_per_key_and_connector(gateway):
    a = fresh_key(gateway, "explorer")["key"]
    b = fresh_key(gateway, "explorer")["key"]
    burst = explorer_limit(gateway, a)["burst"]
    for _ in range(burst):
        gateway.post("crm", "create_contact", CONTACT, key=a)
    assert gateway.post("crm", "create_contact", CONTACT, key=a).status_code == 429
    # Another key, and another connector for the same key, are untouched.
    assert gateway.post("crm", "create_contact", CONTACT, key=b).status_code == 200
    r = gateway.post("mail", "send", {"to": ["a@example.com"], "subject": "s", "body": "b"}, key=a)
    assert r.status_code == 200, r.text


def test_refusals_before_throttle_do_not_spend_quota(gateway):
    key = fresh_key(gateway, "explorer")["key"]
    burst = explorer_limit(gateway, key)["burst"]
    for _ in range(burst * 3):
        assert gateway.post("crm", "create_contact", {"name": 1}, key=key).status_code == 400
    for _ in range(burst):
        assert gateway.post("crm", "create_contact", CONTACT, key=key).status_code == 200


def test_usage_reports_standing(gateway):
    key = fresh_key(gateway, "explorer")["key"]
    before = explorer_limit(gateway, key)
    assert before["remaining"] == before["burst"]
    gateway.post("crm", "create_contact", CONTACT, key=key)
    after = explorer_limit(gateway, key)
    assert after["remaining"] == before["burst"] - 1
    usage = gateway.get("/v1/me/usage", key=key).json()
    assert usage["principal"]["role"] == "explorer"
    assert usage["priority"] == {"default": "normal", "max": "normal"}
    # Shared rules are listed once per bucket, not once per operation they bind.
    names = [(l["policy"], l.get("connector")) for l in usage["limits"]]
    assert len(names) == len(set(names)), names
    assert ("tenant-sandbox", None) in names
