"""Cost budgets against the real binary: the price on every answer, the
warning at 80%, the refusal at 100% with its reset time, the event in the
audit store, sandbox calls that cost nothing real, and spending that
survives a restart."""

import datetime
import os
import shutil
import signal
import sqlite3
import time

from conftest import EXAMPLES, Gateway, assert_problem, make_key, run_cli, wait_for

CONTACT = {"email": "ada@example.com", "name": "Ada"}

# crm.create_contact costs 0.002: five live calls spend a 0.01 daily budget.
BUDGETS = """
kind: policy
name: money
budgets:
  currency: EUR
  warn_at_percent: 80
  ask: "Ask the platform team in #platform-help."
  tenants:
    "*": { daily: 0.01 }
"""


def defs_with_live_simulator(tmp_path):
    defs = tmp_path / "defs"
    shutil.copytree(EXAMPLES, defs)
    crm = defs / "connectors" / "crm.yaml"
    text = crm.read_text()
    live = 'live: { base_url: "https://crm.example.com/api/v2" }'
    assert live in text
    crm.write_text(text.replace(live, "live: { simulator: true }"))
    # Only one document may hold budgets: these replace the examples' shared rules.
    (defs / "policies" / "limits.yaml").write_text(BUDGETS)
    return defs


def events(data):
    con = sqlite3.connect(os.path.join(data, "sandgate.db"))
    try:
        return con.execute("SELECT code, reason FROM decisions WHERE decision = 'event'").fetchall()
    finally:
        con.close()


def test_budget_warns_then_refuses_until_it_resets(tmp_path):
    defs = defs_with_live_simulator(tmp_path)
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    live = make_key(data, "admin", mode="live", user="ann")["key"]
    sandbox = make_key(data, "admin", user="ann")["key"]
    gw = Gateway(data).start()
    try:
        answers = [gw.post("crm", "create_contact", CONTACT, key=live) for _ in range(5)]
        assert [r.status_code for r in answers] == [200] * 5, [r.text for r in answers]
        assert answers[0].headers["Sandgate-Cost"] == "0.0020 EUR (live, charged)"
        assert "Sandgate-Budget-Warning" not in answers[2].headers  # 60%
        warn = answers[3].headers["Sandgate-Budget-Warning"]        # 80%
        assert warn.startswith("tenant daily budget 80% used: 0.01 of 0.01 EUR; resets "), warn

        r = gw.post("crm", "create_contact", CONTACT, key=live)
        body = assert_problem(r, 429, "budget_exceeded")
        assert body["type"].endswith("#quota-exceeded")
        midnight = (datetime.datetime.now(datetime.timezone.utc).date()
                    + datetime.timedelta(days=1))
        resets = midnight.strftime("%Y-%m-%dT00:00:00Z")
        assert body["budget"] == {"scope": "tenant", "period": "daily", "limit": 0.01,
                                  "spent": 0.01, "currency": "EUR", "resets_at": resets,
                                  "ask": "Ask the platform team in #platform-help."}
        assert f"it resets at {resets}. Ask the platform team" in body["detail"]
        left = (datetime.datetime.combine(midnight, datetime.time(),
                                          datetime.timezone.utc).timestamp() - time.time())
        assert abs(int(r.headers["Retry-After"]) - left) <= 2

        # Sandbox calls are never charged, but show what they would have cost.
        r = gw.post("crm", "create_contact", CONTACT, key=sandbox)
        assert r.status_code == 200 and r.headers["Sandgate-Cost"] == "0.0020 EUR (sandbox, not charged)"
        usage = gw.get("/v1/me/usage", key=sandbox).json()["money"]
        assert usage["sandbox_would_have_cost"]["daily"] == 0.002
        [line] = usage["budgets"]
        assert line["left"] == 0 and line["spent"] == 0.01 and line["resets_at"] == resets

        metrics = gw.get("/metrics").text
        assert 'sandgate_budget_spend_total{tenant="acme",mode="live"} 0.010000' in metrics
        assert 'sandgate_budget_spend_total{tenant="acme",mode="sandbox"} 0.002000' in metrics
        # Exactly one event marks the crossing of the warning level.
        assert wait_for(lambda: len(events(data)) == 1)
        assert events(data)[0] == ("budget_warning",
                                   "tenant daily budget passed 80%: 0.01 of 0.01 EUR spent")
    finally:
        gw.assert_clean_exit(gw.stop())

    # Spending is summed back from the record at start: still refused.
    gw = Gateway(data).start()
    try:
        assert_problem(gw.post("crm", "create_contact", CONTACT, key=live), 429, "budget_exceeded")
    finally:
        gw.assert_clean_exit(gw.stop())


def test_refused_calls_cost_nothing(tmp_path):
    defs = defs_with_live_simulator(tmp_path)
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    live = make_key(data, "admin", mode="live", user="bob")["key"]
    gw = Gateway(data).start()
    try:
        # Invalid input is refused before the budget: spends nothing.
        for _ in range(10):
            assert gw.post("crm", "create_contact", {"name": 1}, key=live).status_code == 400
        codes = [gw.post("crm", "create_contact", CONTACT, key=live).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
    finally:
        gw.assert_clean_exit(gw.stop())


def spend_state(data):
    con = sqlite3.connect(os.path.join(data, "sandgate.db"))
    try:
        spent = con.execute("SELECT coalesce(sum(micros), 0) FROM spend_daily"
                            " WHERE mode = 'live'").fetchone()[0]
        mark = con.execute("SELECT value FROM meta WHERE key = 'spend_through'").fetchone()[0]
        newest = con.execute("SELECT max(id) FROM decisions").fetchone()[0]
        allowed = con.execute("SELECT count(*) FROM decisions WHERE decision = 'allowed'"
                              " AND mode = 'live'").fetchone()[0]
        return spent, mark, newest, allowed
    finally:
        con.close()


def test_spending_survives_a_crash(tmp_path):
    """Killed before the writer added its tally to the daily rows, the
    gateway restores the spending from the decisions after the mark."""
    defs = defs_with_live_simulator(tmp_path)
    data = str(tmp_path / "data")
    run_cli("apply", "-f", str(defs), data_dir=data)
    live = make_key(data, "admin", mode="live", user="ann")["key"]
    gw = Gateway(data).start()
    answers = [gw.post("crm", "create_contact", CONTACT, key=live) for _ in range(4)]
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    assert wait_for(lambda: spend_state(data)[3] == 4)
    gw.signal(signal.SIGKILL)
    gw.proc.wait(timeout=10)
    gw.log.close()

    gw = Gateway(data).start()
    try:
        r = gw.post("crm", "create_contact", CONTACT, key=live)  # the fifth: exactly 100%
        assert r.status_code == 200, r.text
        assert_problem(gw.post("crm", "create_contact", CONTACT, key=live), 429, "budget_exceeded")
    finally:
        gw.assert_clean_exit(gw.stop())
    # A clean stop leaves every allowed call counted in the daily rows, and the mark at the newest.
    spent, mark, newest, allowed = spend_state(data)
    assert (spent, allowed) == (10000, 5)
    assert mark == newest
