"""sandgate keys rotate: a successor for the same tenant, user, role and mode;
the old key keeps working through the overlap and says until when, in
Sandgate-Key-Expires on every reply; --overlap 0 revokes it at once."""
import email.utils
import json

from conftest import CONTACT_MIN, assert_problem, fresh_key, metric, run_cli, wait_for


def rotate(gw, key_id, *extra):
    """Rotates `key_id` and waits until the running gateway has picked it up."""
    before = metric(gw, "sandgate_snapshot_generation")
    out = run_cli("keys", "rotate", key_id, "--json", *extra, data_dir=gw.data_dir)
    assert wait_for(lambda: metric(gw, "sandgate_snapshot_generation") > before, timeout=10), (
        "gateway did not pick up the rotation")
    return json.loads(out.stdout)


def listed(gw, key_id):
    rows = json.loads(run_cli("keys", "list", "--json", data_dir=gw.data_dir).stdout)
    return next(r for r in rows if r["id"] == key_id)


def test_old_key_works_through_the_overlap_and_says_until_when(gateway):
    old = fresh_key(gateway, "maker")
    r = gateway.post("crm", "create_contact", CONTACT_MIN, key=old["key"])
    assert r.status_code == 200 and "Sandgate-Key-Expires" not in r.headers

    new = rotate(gateway, old["id"], "--overlap", "2h")
    assert new["replaces"] == old["id"] and new["id"] != old["id"]
    assert new["key"].startswith("sgk_") and new["key"] != old["key"]
    for field in ("tenant", "user", "role", "mode"):
        assert new[field] == old[field], field
    assert new["expires_at"] is None  # the old key had no TTL, nor has its successor
    assert new["old_key_until"] == new["created_at"] + 7200

    # Both keys work; only the old one carries the header, on success and refusal alike.
    r = gateway.post("crm", "create_contact", CONTACT_MIN, key=old["key"])
    assert r.status_code == 200, r.text
    expires = r.headers["Sandgate-Key-Expires"]
    assert expires.endswith(" GMT")
    assert email.utils.parsedate_to_datetime(expires).timestamp() == new["old_key_until"]
    bad = gateway.post("crm", "create_contact", {"name": 7}, key=old["key"])
    assert bad.status_code == 400 and bad.headers["Sandgate-Key-Expires"] == expires
    usage = gateway.get("/v1/me/usage", key=old["key"])
    assert usage.status_code == 200 and usage.headers["Sandgate-Key-Expires"] == expires
    r = gateway.post("crm", "create_contact", CONTACT_MIN, key=new["key"])
    assert r.status_code == 200 and "Sandgate-Key-Expires" not in r.headers

    row = listed(gateway, old["id"])
    assert row["state"] == "rotated" and row["replaced_by"] == new["id"]
    assert row["expires_at"] == new["old_key_until"]
    assert listed(gateway, new["id"])["state"] == "active"

    # A key is rotated once; its successor is the one to rotate next.
    p = run_cli("keys", "rotate", old["id"], data_dir=gateway.data_dir, check=False)
    assert p.returncode != 0 and "no active key" in p.stderr


def test_overlap_zero_refuses_the_old_key_at_once(gateway):
    old = fresh_key(gateway, "maker")
    new = rotate(gateway, old["id"], "--overlap", "0")
    assert new["old_key_until"] == new["created_at"]
    # The snapshot the rotation produced is live: no grace, no polling for the refusal.
    body = assert_problem(gateway.post("crm", "create_contact", CONTACT_MIN, key=old["key"]),
                          401, "key_revoked")
    assert old["id"] in body["detail"]
    r = gateway.post("crm", "create_contact", CONTACT_MIN, key=new["key"])
    assert r.status_code == 200 and "Sandgate-Key-Expires" not in r.headers
    assert listed(gateway, old["id"])["state"] == "revoked"


def test_successor_keeps_the_ttl_length(gateway):
    old = fresh_key(gateway, "maker", ttl="2h")
    new = rotate(gateway, old["id"], "--overlap", "30m")
    assert new["expires_at"] == new["created_at"] + 7200
    assert new["old_key_until"] == new["created_at"] + 1800


def test_rotate_refuses_bad_arguments(gateway):
    old = fresh_key(gateway, "maker")
    for bad in ("10", "-1h", "500ms", "400d", "soon"):
        p = run_cli("keys", "rotate", old["id"], "--overlap", bad, data_dir=gateway.data_dir,
                    check=False)
        assert p.returncode != 0 and "--overlap must be 0" in p.stderr, (bad, p.stderr)
    p = run_cli("keys", "rotate", "0000000000000000", data_dir=gateway.data_dir, check=False)
    assert p.returncode != 0 and "no active key" in p.stderr
    p = run_cli("keys", "rotate", data_dir=gateway.data_dir, check=False)
    assert p.returncode != 0 and "exactly one key ID" in p.stderr
    # Nothing was changed by the refusals: the key is still plainly active.
    assert listed(gateway, old["id"])["state"] == "active"
