"""The data boundary: the DLP screen on the governed path, both ways, for
direct calls and a template's ctx.call, driven through the real binary
with a scripted upstream on 127.0.0.1 (mock_upstream.py).  What the
upstream receives and what the caller gets back are both checked, and so
are the audit record, /metrics, the run documents, the store and the log:
a planted card number must never be kept unmasked."""

import json
import os
import re
import sqlite3
import time

import pytest
import requests

from conftest import Gateway, assert_problem, audit, make_key, metric, run_cli, wait_for
from mock_upstream import Upstream

# Luhn-valid test numbers (a Visa and a Mastercard IIN).
CARD = "4111 1111 1111 1111"
CARD_DIGITS = CARD.replace(" ", "")
CARD2 = "5500005555555559"
PLANTED = "4012 8888 8888 1881"
PLANTED_DIGITS = PLANTED.replace(" ", "")
GITHUB_TOKEN = "ghp_" + "Zq7Lm2Xc9Vb4Nn8Kk1Hh6Gg3Ff5Dd0Ss2Aa9"

ACTIONS = ("allow", "alert", "mask", "tokenize", "redact", "block")

POLICY = """kind: policy
name: dlp-test
description: A role per DLP action, a sandbox role, and two for field allowlists.
roles:
%(roles)s
dlp:
  actions:
%(actions)s
  allow_fields:
    - roles: [minimal]
      operations: ["ledger.fetch"]
      fields: ["/id", "/items/*/sku"]
    - roles: [minimal]
      operations: ["ledger.echo"]
      fields: ["/note"]
"""

ROLE = """  %s:
    description: Test role.
    allow:
      - operations: ["*"]
        modes: [sandbox, live]
    limits:
      sandbox: { rate: 1000/s, burst: 1000 }
      live: { rate: 1000/s, burst: 1000 }
"""

ACTION = """    - class: financial.card
      roles: [r_%s]
      action: %s
"""


def policy():
    roles = [f"r_{a}" for a in ACTIONS] + ["sbx", "minimal", "full"]
    return POLICY % {"roles": "".join(ROLE % r for r in roles),
                     "actions": "".join(ACTION % (a, a) for a in ACTIONS)}


def connector(name, sandbox_env, live_url):
    return f"""kind: connector
name: {name}
version: 1.0.0
description: A scripted upstream on loopback.
auth: none
egress: {{ allow: ["127.0.0.1/32"] }}
environments:
  sandbox: {sandbox_env}
  live: {{ base_url: "{live_url}", timeout: 5s, connect_timeout: 2s }}
operations:
  echo:
    description: Sends a note and reads one back.
    method: POST
    path: /echo
    data_domain: finance
    input:
      type: object
      properties:
        note: {{ type: string, maxLength: 4000 }}
        card: {{ type: string, maxLength: 64 }}
        account: {{ type: string, maxLength: 64, x-data-class: pii.account }}
    output:
      type: object
      properties:
        note: {{ type: string }}
        ref: {{ type: string, x-data-class: pii.account }}
    examples:
      - {{ note: "synthetic {CARD2}" }}
  fetch:
    description: Reads a record.
    method: POST
    path: /fetch
    data_domain: finance
    input: {{ type: object, properties: {{ id: {{ type: string }} }} }}
    output: {{ type: object }}
"""


TEMPLATE = """kind: template
name: dlp-probe
version: 1.0.0
description: Sends a note through ledger.echo and returns what came back.
input:
  type: object
  properties:
    note: { type: string }
    log: { type: string }
capabilities: ["ledger.echo"]
limits:
  wall_time: 5s
  cpu_time: 1s
  memory: 16MiB
  instructions: 1000000
  calls: 2
"""

TEMPLATE_LUA = """function run(input, ctx)
  if input.log then ctx.log("saw " .. input.log) end
  local ok, res = pcall(ctx.call, "ledger.echo", { note = input.note })
  if not ok then
    return { code = res.code, detail = res.detail }
  end
  return { got = res.note, logged = input.log }
end
"""


class Env:
    """A gateway with the test connectors, policy and template, the upstream,
    and a key per role (live, unless the role is sandbox-only in a test)."""

    def __init__(self, tmp_path, upstream):
        defs = tmp_path / "defs"
        for d in ("connectors", "policies", "templates/dlp-probe"):
            (defs / d).mkdir(parents=True)
        (defs / "policies" / "dlp.yaml").write_text(policy())
        # ledger: the simulator in sandbox, the upstream live.
        (defs / "connectors" / "ledger.yaml").write_text(
            connector("ledger", "{ simulator: true }", upstream.url))
        # labs: a sandbox environment with a real upstream.
        (defs / "connectors" / "labs.yaml").write_text(
            connector("labs", f'{{ base_url: "{upstream.url}" }}', upstream.url))
        (defs / "templates" / "dlp-probe" / "template.yaml").write_text(TEMPLATE)
        (defs / "templates" / "dlp-probe" / "main.lua").write_text(TEMPLATE_LUA)
        self.data = str(tmp_path / "data")
        run_cli("apply", "-f", str(defs), data_dir=self.data)
        self.keys = {}
        for a in ACTIONS:
            self.keys[a] = make_key(self.data, f"r_{a}", mode="live", user=f"u-{a}")["key"]
        self.keys["sbx"] = make_key(self.data, "sbx", mode="sandbox", user="u-sbx")["key"]
        self.keys["sbx_live"] = make_key(self.data, "sbx", mode="live", user="u-sbx-live")["key"]
        for r in ("minimal", "full"):
            self.keys[r] = make_key(self.data, r, mode="live", user=f"u-{r}")["key"]
            self.keys[r + "_sbx"] = make_key(self.data, r, mode="sandbox",
                                             user=f"u-{r}-sbx")["key"]
        self.gw = Gateway(self.data).start()

    def call(self, who, op, body, connector="ledger"):
        return self.gw.post(connector, op, body, key=self.keys[who])

    def run(self, who, body):
        r = requests.post(f"{self.gw.url}/v1/templates/dlp-probe/runs", json=body, timeout=30,
                          headers={"Authorization": "Bearer " + self.keys[who]})
        assert r.status_code == 200, r.text
        return r.json()

    def dlp_rows(self, trace):
        rows = audit(self.data, "trace_id = ?", (trace,), until=lambda rows: len(rows) >= 1)
        return [json.loads(r["dlp"]) if r["dlp"] else [] for r in rows]

    def stop(self):
        self.gw.assert_clean_exit(self.gw.stop())


@pytest.fixture(scope="module")
def upstream():
    u = Upstream().start()
    yield u
    u.stop()


@pytest.fixture(scope="module")
def env(tmp_path_factory, upstream):
    e = Env(tmp_path_factory.mktemp("dlp"), upstream)
    yield e
    e.stop()


@pytest.fixture(autouse=True)
def echo(upstream):
    """By default the upstream answers with the note it was sent."""
    upstream.answer = lambda req: (200, {}, {"note": json.loads(req["body"] or b"{}").get(
        "note", "")})
    yield


def trace_of(resp):
    return resp.headers["traceparent"].split("-")[1]


def masked(value):
    """A card masked to its last four, whatever the mask character."""
    return (value is not None and CARD_DIGITS not in re.sub(r"[ -]", "", value)
            and value.endswith("1111") and "4111" not in value[:-4])


def expect(action, got):
    """Whether `got` is what `action` makes of a note holding CARD."""
    if action in ("allow", "alert"):
        return got == "pay " + CARD
    assert CARD not in got and CARD_DIGITS not in got.replace(" ", ""), got
    if action == "mask":
        return got.startswith("pay ") and masked(got[4:])
    if action == "tokenize":
        return re.fullmatch(r"pay tok_[A-Za-z0-9_-]+", got) is not None
    if action == "redact":
        return "REDACTED" in got and "financial.card" in got
    raise AssertionError(action)


def events(env, trace, direction):
    [evs] = env.dlp_rows(trace)
    return [e for e in evs if e.get("dir") == direction]


# ---- direct calls, both directions ----

@pytest.mark.parametrize("action", ACTIONS)
def test_each_action_on_the_request(env, upstream, action):
    before = upstream.count()
    r = env.call(action, "echo", {"note": "pay " + CARD})
    if action == "block":
        body = assert_problem(r, 403, "dlp_blocked")
        assert body["pointer"] == "/note" and body["rule"] == "card"
        assert "/note" in body["detail"] and "card" in body["detail"]
        assert CARD not in r.text and CARD_DIGITS not in r.text
        assert upstream.count() == before, "a blocked request reached the upstream"
    else:
        assert r.status_code == 200, r.text
        sent = json.loads(upstream.last()["body"])["note"]
        assert expect(action, sent), sent
    evs = events(env, trace_of(r), "request")
    if action == "allow":
        assert evs == []
    else:
        assert evs and evs[0] == {"dir": "request", "path": "/note", "rule": "card",
                                  "class": "financial.card", "action": action}


@pytest.mark.parametrize("action", ACTIONS)
def test_each_action_on_the_response(env, upstream, action):
    upstream.answer = lambda req: (200, {}, {"note": "pay " + CARD})
    r = env.call(action, "echo", {"note": "hello"})
    if action == "block":
        body = assert_problem(r, 403, "dlp_blocked")
        assert body["pointer"] == "/note" and body["rule"] == "card"
        assert body["direction"] == "response"
        assert CARD not in r.text and CARD_DIGITS not in r.text
    else:
        assert r.status_code == 200, r.text
        assert expect(action, r.json()["note"]), r.json()
    evs = events(env, trace_of(r), "response")
    if action == "allow":
        assert evs == []
    else:
        assert evs == [{"dir": "response", "path": "/note", "rule": "card",
                        "class": "financial.card", "action": action}]


def test_a_token_is_stable_for_one_value(env, upstream):
    a = env.call("tokenize", "echo", {"note": "pay " + CARD})
    first = json.loads(upstream.last()["body"])["note"]
    b = env.call("tokenize", "echo", {"note": "pay " + CARD})
    second = json.loads(upstream.last()["body"])["note"]
    assert a.status_code == b.status_code == 200
    assert first == second and first.startswith("pay tok_")


# ---- the same through a template's ctx.call ----

@pytest.mark.parametrize("action", ACTIONS)
def test_each_action_through_a_template_run(env, upstream, action):
    before = upstream.count()
    doc = env.run(action, {"note": "pay " + CARD})
    assert doc["status"] == "succeeded", doc
    out = doc["output"]
    if action == "block":
        # The template reads the refusal as an error it can handle.
        assert out["code"] == "dlp_blocked", out
        assert "/note" in out["detail"] and "card" in out["detail"]
        assert CARD not in json.dumps(doc)
        assert upstream.count() == before
    else:
        sent = json.loads(upstream.last()["body"])["note"]
        assert expect(action, sent), sent
        got = out["got"]
        if action in ("alert", "allow"):
            # The reply is the card again; what the run keeps is masked (stored data
            # outlives the call) unless the policy allows the class for the role.
            assert got == "pay " + CARD if action == "allow" else masked(got[4:]), got
        else:
            assert expect(action, got), got
    [span] = doc["calls"]
    rows = audit(env.data, "trace_id = ? AND connector = 'ledger'", (doc["trace_id"],),
                 until=lambda rows: len(rows) == 1)
    evs = json.loads(rows[0]["dlp"]) if rows[0]["dlp"] else []
    if action == "allow":
        assert evs == []
    else:
        assert {"dir": "request", "path": "/note", "rule": "card", "class": "financial.card",
                "action": action} in evs
    assert span["decision"] == ("denied" if action == "block" else "allowed")


@pytest.mark.parametrize("action", ACTIONS)
def test_each_action_on_a_reply_through_a_template_run(env, upstream, action):
    upstream.answer = lambda req: (200, {}, {"note": "pay " + CARD})
    doc = env.run(action, {"note": "hello"})
    assert doc["status"] == "succeeded", doc
    out = doc["output"]
    if action == "block":
        assert out["code"] == "dlp_blocked", out
        assert "/note" in out["detail"] and "card" in out["detail"]
        assert CARD not in json.dumps(doc)
    elif action == "allow":
        assert out["got"] == "pay " + CARD
    elif action == "alert":
        assert masked(out["got"][4:]), out  # the script saw it; the run keeps it masked
    else:
        assert expect(action, out["got"]), out
    rows = audit(env.data, "trace_id = ? AND connector = 'ledger'", (doc["trace_id"],),
                 until=lambda rows: len(rows) == 1)
    evs = [e for e in (json.loads(rows[0]["dlp"]) if rows[0]["dlp"] else [])
           if e["dir"] == "response"]
    if action == "allow":
        assert evs == []
    else:
        assert evs == [{"dir": "response", "path": "/note", "rule": "card",
                        "class": "financial.card", "action": action}]


def test_a_reply_blocked_inside_a_run_reaches_the_template_as_an_error(env, upstream):
    upstream.answer = lambda req: (200, {}, {"note": "key " + GITHUB_TOKEN})
    doc = env.run("alert", {"note": "hello"})
    assert doc["status"] == "succeeded", doc
    assert doc["output"]["code"] == "dlp_blocked"
    assert "github_token" in doc["output"]["detail"] and "/note" in doc["output"]["detail"]
    assert GITHUB_TOKEN not in json.dumps(doc)


# ---- the defaults ----

def test_a_secret_is_blocked_by_default_naming_pointer_and_rule(env, upstream):
    before = upstream.count()
    r = env.call("sbx_live", "echo", {"note": "use " + GITHUB_TOKEN})
    body = assert_problem(r, 403, "dlp_blocked")
    assert body["pointer"] == "/note" and body["rule"] == "github_token"
    assert "/note" in body["detail"] and "github_token" in body["detail"]
    assert "policy exception" in body["remediation"]
    assert GITHUB_TOKEN not in r.text and GITHUB_TOKEN[4:] not in r.text
    assert upstream.count() == before
    [row] = audit(env.data, "trace_id = ?", (trace_of(r),), until=lambda rows: len(rows) == 1)
    assert row["code"] == "dlp_blocked" and row["decision"] == "denied"
    assert GITHUB_TOKEN not in json.dumps(row, default=bytes.hex)
    assert json.loads(row["dlp"]) == [{"dir": "request", "path": "/note", "rule": "github_token",
                                       "class": "secret.github", "action": "block"}]


def test_sandbox_replies_from_a_real_upstream_are_masked_and_simulator_data_is_not(env, upstream):
    upstream.answer = lambda req: (200, {}, {"note": "card " + CARD + " mail ann@example.org"})
    r = env.call("sbx", "echo", {"note": "hello"}, connector="labs")
    assert r.status_code == 200, r.text
    note = r.json()["note"]
    assert CARD_DIGITS not in note.replace(" ", "") and "ann@example.org" not in note, note
    assert note.startswith("card ")
    classes = {(e["class"], e["action"]) for e in events(env, trace_of(r), "response")}
    assert {("financial.card", "mask"), ("pii.email", "mask")} <= classes
    # The simulator's reply (it echoes the note) is synthetic: left alone.
    r = env.call("sbx", "echo", {"note": "synthetic " + CARD2})
    assert r.status_code == 200, r.text
    assert r.json()["note"] == "synthetic " + CARD2
    assert events(env, trace_of(r), "response") == []


def test_the_same_reply_live_is_only_alerted_by_default(env, upstream):
    upstream.answer = lambda req: (200, {}, {"note": "card " + CARD})
    r = env.call("sbx_live", "echo", {"note": "hello"}, connector="labs")
    assert r.status_code == 200, r.text
    assert r.json() == {"note": "card " + CARD}
    assert events(env, trace_of(r), "response") == [
        {"dir": "response", "path": "/note", "rule": "card", "class": "financial.card",
         "action": "alert"}]


def test_x_data_class_flags_a_field_by_its_place_in_the_schema(env, upstream):
    # Nothing in these values looks sensitive: only the schema says they are.
    upstream.answer = lambda req: (200, {}, {"note": "ok", "ref": "blue-horse-42"})
    r = env.call("sbx", "echo", {"note": "hi", "account": "green-cat-7"}, connector="labs")
    assert r.status_code == 200, r.text
    assert r.json()["note"] == "ok" and r.json()["ref"] != "blue-horse-42", r.json()
    assert json.loads(upstream.last()["body"])["account"] == "green-cat-7"  # alerted only
    [evs] = env.dlp_rows(trace_of(r))
    assert {"dir": "request", "path": "/account", "rule": "x-data-class",
            "class": "pii.account", "action": "alert"} in evs
    assert {"dir": "response", "path": "/ref", "rule": "x-data-class",
            "class": "pii.account", "action": "mask"} in evs


# ---- field allowlists ----

def test_a_field_allowlist_removes_fields_for_one_role_and_not_another(env, upstream):
    record = {"id": "r1", "owner": "Ann", "items": [{"sku": "a", "price": 3}, {"sku": "b"}]}
    upstream.answer = lambda req: (200, {}, record)
    r = env.call("minimal", "fetch", {"id": "r1"})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": "r1", "items": [{"sku": "a"}, {"sku": "b"}]}
    r = env.call("full", "fetch", {"id": "r1"})
    assert r.status_code == 200, r.text
    assert r.json() == record


def test_a_field_allowlist_binds_simulator_replies_too(env):
    # Synthetic data is not screened for classes, but what a role may see is
    # about the role: the simulator's extra member is removed all the same.
    full = env.call("full_sbx", "echo", {"note": "hi"})
    assert full.status_code == 200, full.text
    assert set(full.json()) == {"note", "ref"}
    minimal = env.call("minimal_sbx", "echo", {"note": "hi"})
    assert minimal.status_code == 200, minimal.text
    assert minimal.json() == {"note": full.json()["note"]}


# ---- where a card must never be kept ----

def test_a_planted_card_is_never_kept_unmasked(env, upstream):
    # A number no other test uses (the role that may keep cards keeps its own).
    # Alerted on the way out (it reaches the upstream, as the policy allows),
    # echoed back, logged and returned by a template.
    r = env.call("alert", "echo", {"note": "pay " + PLANTED})
    assert r.status_code == 200 and r.json()["note"] == "pay " + PLANTED
    doc = env.run("alert", {"note": "pay " + PLANTED, "log": PLANTED_DIGITS})
    assert doc["status"] == "succeeded", doc
    assert doc["output"]["logged"] != PLANTED_DIGITS and doc["output"]["logged"].endswith("1881")
    assert any(line.startswith("saw ") and line.endswith("1881") for line in doc["logs"])
    run_id = doc["id"]
    # The run document as GET shows it, and as the store keeps it.
    shown = env.gw.get(f"/v1/runs/{run_id}", key=env.keys["alert"])
    assert shown.status_code == 200
    assert PLANTED_DIGITS not in shown.text and PLANTED not in shown.text
    db = os.path.join(env.data, "sandgate.db")

    def stored():
        with sqlite3.connect(db) as con:
            return con.execute("SELECT count(*) FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
    assert wait_for(stored, timeout=10), "the run was not stored"
    audit(env.data, "trace_id = ?", (trace_of(r),), until=lambda rows: len(rows) == 1)
    with sqlite3.connect(db) as con:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        text = []
        for t in tables:
            for row in con.execute(f'SELECT * FROM "{t}"'):
                text.extend(str(v) for v in row if isinstance(v, (str, bytes)))
    dump = "\n".join(text)
    assert run_id in dump  # the dump does hold the run
    assert PLANTED not in dump and PLANTED_DIGITS not in dump
    log = env.gw.log_text()
    assert PLANTED not in log and PLANTED_DIGITS not in log


# ---- counting ----

def test_events_are_counted_in_metrics_by_class_action_direction_connector(env, upstream):
    name = ('sandgate_dlp_events_total{class="financial.card",action="mask",'
            'direction="request",connector="ledger"}')
    before = metric(env.gw, name) or 0
    assert env.call("mask", "echo", {"note": "pay " + CARD}).status_code == 200
    assert env.call("mask", "echo", {"note": "pay " + CARD}).status_code == 200
    assert wait_for(lambda: (metric(env.gw, name) or 0) >= before + 2, timeout=5)
    assert metric(env.gw, name) == before + 2


def test_many_findings_are_cut_at_a_whole_event_with_a_marker(env, upstream):
    notes = " ".join(["pay " + CARD] * 30)
    r = env.call("mask", "echo", {"note": notes})
    assert r.status_code == 200, r.text
    [row] = audit(env.data, "trace_id = ?", (trace_of(r),), until=lambda rows: len(rows) == 1)
    assert len(row["dlp"]) <= 767
    evs = json.loads(row["dlp"])
    assert "more" in evs[-1] and evs[-1]["more"] > 0
    assert all(e["action"] == "mask" for e in evs[:-1])


# ---- the policy's own rules ----

def test_a_custom_rule_that_does_not_compile_is_refused_at_apply(tmp_path):
    defs = tmp_path / "defs"
    (defs / "policies").mkdir(parents=True)
    (defs / "policies" / "p.yaml").write_text("""kind: policy
name: bad-rule
description: A custom rule whose pattern Vectorscan refuses.
roles:
  someone:
    description: Test role.
dlp:
  rules:
    - id: acme_broken
      class: acme.id
      pattern: "ACME-(?=[0-9])"
""")
    p = run_cli("apply", "-f", str(defs), data_dir=str(tmp_path / "data"), check=False)
    assert p.returncode != 0
    # The rule is named by its place in the file, at its pattern's line.
    assert re.search(r"p\.yaml:\d+:\d+: dlp\.rules\[1\]: pattern .*Vectorscan refuses it",
                     p.stderr), p.stderr
    assert "nothing was applied" in p.stderr
