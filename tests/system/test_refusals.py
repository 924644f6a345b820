"""Refusals made early in the path: what they say about the caller's class,
and that they are audited like any other decision."""

import os
import shutil
import sqlite3

import requests

from conftest import CONTACT_MIN, EXAMPLES, Gateway, assert_problem, make_key, run_cli, wait_for


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


UNDECLARED_YAML = """\
kind: template
name: overreach
version: 1.0.0
description: Declares one operation and calls another.
input: { type: object }
capabilities: ["crm.create_contact"]
limits: { wall_time: 2s, cpu_time: 500ms, memory: 16MiB, instructions: 1000000, calls: 4 }
"""

UNDECLARED_LUA = """\
function run(input, ctx)
  local ok, err = pcall(ctx.call, "mail.send", { to = { "a@example.com" }, subject = "s",
                                                 body = "b" })
  return { ok = ok, code = (not ok) and err.code or nil }
end
"""


def test_an_undeclared_call_is_refused_and_audited_under_its_runner(tmp_path):
    defs = tmp_path / "defs"
    shutil.copytree(EXAMPLES, defs, ignore=shutil.ignore_patterns("sandgate.yaml"))
    tpl = defs / "templates" / "overreach"
    tpl.mkdir()
    (tpl / "template.yaml").write_text(UNDECLARED_YAML)
    (tpl / "main.lua").write_text(UNDECLARED_LUA)
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    key = make_key(data, "maker", user="reacher")["key"]
    gw = Gateway(data).start()
    try:
        r = requests.post(f"{gw.url}/v1/templates/overreach/runs", json={}, timeout=30,
                          headers={"Authorization": "Bearer " + key})
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["output"] == {"ok": False, "code": "capability_not_declared"}
        assert doc["calls"][0]["code"] == "capability_not_declared"
        db = os.path.join(data, "sandgate.db")

        def audited():
            with sqlite3.connect(db) as con:
                return con.execute(
                    "SELECT user, connector, operation, decision, status, code, reason "
                    "FROM decisions WHERE trace_id = ?", (doc["trace_id"],)).fetchall()
        assert wait_for(lambda: len(audited()) == 1, timeout=10), audited()
        user, conn, op, decision, status, code, reason = audited()[0]
        assert (user, conn, op, decision, status, code) == (
            "reacher", "mail", "send", "denied", 403, "capability_not_declared")
        assert 'did not declare "mail.send"' in reason
    finally:
        gw.assert_clean_exit(gw.stop())


def test_a_body_with_bytes_after_its_value_is_malformed(gateway):
    key = gateway.keys["power"]
    good = '{"email": "ada@example.com", "name": "Ada"}'
    assert gateway.post("crm", "create_contact", raw=good, key=key).status_code == 200
    # jansson alone takes "123\0" as 123 (and the schema then refuses a number).
    for raw in ("123\0", good + "\0", good + "\0{\"x\": 1}", good + " 5", good + "}"):
        body = assert_problem(gateway.post("crm", "create_contact", raw=raw, key=key), 400,
                              "malformed_json")
        assert "line" in body["detail"] or "NUL" in body["detail"], body
    body = assert_problem(gateway.post("crm", "create_contact", raw=good + "\0", key=key), 400,
                          "malformed_json")
    assert body["detail"] == ("byte %d is a NUL character; JSON text never contains one, so "
                              "send the body without it (write \\u0000 inside a string)"
                              % len(good))
