"""Audit queries for admins, through the CLI (`sandgate audit query`) and
GET /admin/v1/audit on the main listener: "what did this user do this week", "who was refused" by code, paging with cursors
(no row twice, none missed), admin-only access, and bad parameters answered
with the parameter's name and a valid example.

Older history is written straight into the store (the gateway only ever
records "now"); calls made through the gateway must show up too."""

import json
import os
import sqlite3
import time

import pytest
import requests

from conftest import BIN, assert_problem, run_cli, wait_for

HOUR = 3600 * 1000000
DAY = 24 * HOUR
NOW = int(time.time() * 1000000)
TENANT = "seeded"  # the seeded rows' tenant: no test's own tenant is called so

CONTACT = {"email": "ada@example.com", "name": "Ada"}


def seed(data_dir):
    """30 days of history for tenant `seeded`, one row every 2 hours: alice
    and bob take turns, every 5th row is carol refused by DLP."""
    rows = []
    for i in range(360):
        ts = NOW - i * 2 * HOUR - 60 * 1000000
        if i % 5 == 0:
            user, dec, status, code, conn = "carol", "denied", 403, "dlp_blocked", "mail"
        else:
            user, dec, status, code, conn = ("alice", "bob")[i % 2], "allowed", 200, None, "crm"
        rows.append((ts, f"{i:032x}", TENANT, user, "explorer", "sandbox", conn, "op", dec,
                     status, code, 100, 0.0))
    con = sqlite3.connect(os.path.join(data_dir, "sandgate.db"), timeout=10)
    with con:
        con.executemany(
            "INSERT INTO decisions (ts_us, trace_id, tenant, user, role, mode, connector,"
            " operation, decision, status, code, latency_us, cost)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.close()
    return rows


@pytest.fixture(scope="module")
def history(gateway_process):
    return seed(gateway_process.data_dir)


def cli(gw, *args, check=True):
    return run_cli("audit", "query", *args, data_dir=gw.data_dir, check=check)


def cli_json(gw, *args):
    lines = cli(gw, "--json", *args).stdout.splitlines()
    objs = [json.loads(line) for line in lines]
    assert "next_cursor" in objs[-1] and len(objs[-1]) == 1, objs[-1]
    return objs[:-1], objs[-1]["next_cursor"]


def expect(history, pred, since_us=None):
    return [r[1] for r in history if pred(r) and (since_us is None or r[0] >= since_us)]


# ---- CLI ----

def test_cli_what_did_this_user_do_this_week(gateway_process, history):
    items, nxt = cli_json(gateway_process, "--tenant", TENANT, "--user", "alice", "--since", "7d",
                          "--limit", "1000")
    want = expect(history, lambda r: r[3] == "alice", NOW - 7 * DAY)
    assert [i["trace_id"] for i in items] == want  # newest first, exactly these
    assert nxt is None
    assert all(i["user"] == "alice" and i["tenant"] == TENANT for i in items)
    assert items[0]["time"].endswith("Z")


def test_cli_table_for_people(gateway_process, history):
    out = cli(gateway_process, "--tenant", TENANT, "--code", "dlp_blocked", "--limit", "3").stdout
    lines = out.splitlines()
    head = lines[0].split()
    assert head == ["TIME", "TENANT", "USER", "CONNECTOR.OPERATION", "DECISION", "STATUS", "CODE",
                    "TRACE"]
    rows = lines[1:4]
    assert all("carol" in r and "mail.op" in r and "dlp_blocked" in r and " 403 " in r
               for r in rows), out
    # Aligned: every column starts where its heading does.
    col = lines[0].index("DECISION")
    assert all(r[col:col + 6] == "denied" for r in rows), out
    assert "--cursor" in lines[-1]


def test_cli_who_was_refused_by_code(gateway_process, history):
    items, _ = cli_json(gateway_process, "--code", "dlp_blocked", "--since",
                        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW / 1e6 - 7 * 86400)),
                        "--limit", "1000")
    want = expect(history, lambda r: r[10] == "dlp_blocked", NOW - 7 * DAY)
    assert [i["trace_id"] for i in items if i["tenant"] == TENANT] == want
    assert {i["user"] for i in items} == {"carol"}


def test_cli_paging_has_no_duplicates_or_gaps(gateway_process, history):
    seen, cursor, pages = [], None, 0
    while True:
        args = ["--tenant", TENANT, "--limit", "37"] + (["--cursor", cursor] if cursor else [])
        items, cursor = cli_json(gateway_process, *args)
        seen += [i["trace_id"] for i in items]
        pages += 1
        if cursor is None:
            break
    assert pages == 10  # 360 rows / 37 a page
    assert seen == [r[1] for r in history]


@pytest.mark.parametrize("args, words", [
    (["--since", "yesterday"], ["--since", "since=7d"]),
    (["--limit", "5000"], ["--limit", "1 to 1000", "limit=50"]),
    (["--decision", "maybe"], ["--decision", "decision=denied"]),
    (["--trace", "xyz"], ["--trace", "32"]),
    (["--cursor", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"], ["cursor", "without a cursor"]),
])
def test_cli_bad_parameters(gateway_process, history, args, words):
    p = cli(gateway_process, *args, check=False)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stdout == ""
    for w in words:
        assert w in p.stderr, p.stderr


# ---- HTTP ----

def audit_get(gw, key, **params):
    return requests.get(gw.url + "/admin/v1/audit", params=params,
                        headers={"Authorization": "Bearer " + key} if key else {}, timeout=10)


def test_http_user_this_week(gateway, history):
    r = audit_get(gateway, gateway.keys["power"], tenant=TENANT, user="bob", since="7d",
                  limit="1000")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"items", "next_cursor"}
    assert body["next_cursor"] is None
    assert [i["trace_id"] for i in body["items"]] == expect(history, lambda r: r[3] == "bob",
                                                            NOW - 7 * DAY)


def test_http_paging_and_a_tampered_cursor(gateway, history):
    key, seen, cursor = gateway.keys["power"], [], ""
    while True:
        r = audit_get(gateway, key, tenant=TENANT, code="dlp_blocked", limit="10", cursor=cursor)
        assert r.status_code == 200, r.text
        seen += [i["trace_id"] for i in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
        last = cursor
    assert seen == expect(history, lambda r: r[10] == "dlp_blocked")
    tampered = last[:-1] + ("A" if last[-1] != "A" else "B")
    body = assert_problem(audit_get(gateway, key, tenant=TENANT, code="dlp_blocked",
                                    cursor=tampered), 400, "request_invalid")
    assert "cursor" in body["detail"]
    # The cursor of one query does not page another.
    body = assert_problem(audit_get(gateway, key, tenant=TENANT, user="alice", cursor=last),
                          400, "request_invalid")


def test_http_calls_made_show_up(gateway):
    """A refused call and an allowed one, then "who was refused" and "what did
    this user do" over the API, polled until the writer has recorded them."""
    gw, admin = gateway, gateway.keys["power"]
    ok = gw.post("crm", "create_contact", CONTACT, key=gw.keys["explorer"])
    assert ok.status_code == 200, ok.text
    no = gw.post("calendar", "create_event", {}, key=gw.keys["explorer"])  # not the explorer's
    assert no.status_code == 403, no.text
    code = no.json()["code"]
    got = {}

    def recorded():
        got["user"] = audit_get(gw, admin, tenant=gw.tenant, user="explorer-user",
                                since="1h").json()["items"]
        got["refused"] = audit_get(gw, admin, tenant=gw.tenant, code=code).json()["items"]
        return len(got["user"]) == 2 and len(got["refused"]) == 1
    assert wait_for(recorded, timeout=15), got
    assert [i["decision"] for i in got["user"]] == ["denied", "allowed"]  # newest first
    assert got["user"][1]["connector"] == "crm" and got["user"][1]["operation"] == "create_contact"
    assert got["refused"][0]["trace_id"] == no.headers["traceparent"].split("-")[1]


def test_http_admin_only(gateway, history):
    body = assert_problem(audit_get(gateway, gateway.keys["explorer"], tenant=TENANT), 403,
                          "admin_only")
    assert '"admin"' in body["detail"] and "explorer" in body["detail"]
    assert "admin" in body["remediation"]
    assert_problem(audit_get(gateway, gateway.keys["maker"]), 403, "admin_only")
    assert_problem(audit_get(gateway, None), 401, "key_missing")
    # Only GET, and not on the operators' listener.
    r = requests.post(gateway.url + "/admin/v1/audit", timeout=10,
                      headers={"Authorization": "Bearer " + gateway.keys["power"]})
    assert_problem(r, 405, "method_not_allowed")
    assert gateway.admin_get("/admin/v1/audit").status_code == 404


@pytest.mark.parametrize("params, words", [
    ({"since": "last tuesday"}, ["since", "since=7d"]),
    ({"until": "2026-13-01T00:00:00Z"}, ["until", "until=2026-12-01T00:00:00Z"]),
    ({"limit": "0"}, ["limit", "limit=50"]),
    ({"limit": "1001"}, ["limit", "limit=50"]),
    ({"decision": "nope"}, ["decision", "decision=denied"]),
    ({"code": "DLP"}, ["code", "code=dlp_blocked"]),
    ({"trace": "123"}, ["trace", "trace=4bf92f3577b34da6a3ce929d0e0e4736"]),
    ({"colour": "red"}, ["colour", "tenant, user"]),
    ({"cursor": "!!"}, ["cursor"]),
])
def test_http_bad_parameters(gateway, params, words):
    body = assert_problem(audit_get(gateway, gateway.keys["power"], **params), 400,
                          "request_invalid")
    for w in words:
        assert w in body["detail"], body


def test_http_parameter_given_twice(gateway):
    r = requests.get(gateway.url + "/admin/v1/audit?user=a&user=b", timeout=10,
                     headers={"Authorization": "Bearer " + gateway.keys["power"]})
    body = assert_problem(r, 400, "request_invalid")
    assert "user is given twice" in body["detail"]
