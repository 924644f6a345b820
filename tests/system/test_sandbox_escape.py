"""The sandbox escape and abuse corpus, run through the real gateway.

Each hostile template (tests/system/escape/NAME/main.lua says why it is
hostile) is applied next to the examples and run with
POST /v1/templates/NAME/runs.  Every case must end in a named outcome from
docs/sandbox.md (a problem code, the run's error.code, stopped_by.limit),
or in output proving the escape found nothing; and after every case the
gateway must still be healthy: /healthz answers and the ordinary
onboard-contact template still runs."""

import contextlib
import json
import os
import shutil
import time

import pytest
import requests

from conftest import BIN, EXAMPLES, Gateway, alive, assert_problem, make_key, run_cli, wait_for

ESCAPE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "escape")
RUN_TIMEOUT = 60  # seconds; the slowest template's wall_time is 10 s

# The limits in the escape templates' manifests, as stopped_by reports them.
FAST_INSTRUCTIONS = 2000000  # escape-pcall, -coroutine, ...
PATTERN_MEMORY = 32 << 20    # escape-patterns
BOMB_MEMORY = 8 << 20        # escape-memory
RECURSION_MEMORY = 16 << 20  # escape-recursion


# ---- gateways ----

def build_defs(workdir):
    """The examples plus every escape template, in one definitions tree."""
    defs = os.path.join(workdir, "defs")
    if not os.path.isdir(defs):
        shutil.copytree(EXAMPLES, defs)
        for name in sorted(os.listdir(ESCAPE)):
            shutil.copytree(os.path.join(ESCAPE, name), os.path.join(defs, "templates", name))
    return defs


@contextlib.contextmanager
def environment(extra):
    """os.environ with `extra` set, for the gateway process started inside."""
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def start_gateway(workdir, label, env=None):
    data = os.path.join(workdir, label)
    out = json.loads(run_cli("apply", "-f", build_defs(workdir), "--json", data_dir=data).stdout)
    applied = {d["name"] for d in out["documents"] if d["kind"] == "template"}
    assert {n for n in os.listdir(ESCAPE)} <= applied, out
    gw = Gateway(data)
    gw.keys = {
        # Two users of one tenant, and a second tenant, all explorers in sandbox mode
        # (examples/policies/roles.yaml: crm.* and mail.send).
        "acme": make_key(data, "explorer", tenant="acme", user="ann")["key"],
        "acme2": make_key(data, "explorer", tenant="acme", user="bob")["key"],
        "globex": make_key(data, "explorer", tenant="globex", user="gus")["key"],
        # The health check runs onboard-contact after every case; an admin's sandbox
        # rate limit (50/s) leaves room for that, an explorer's (1 mail/s) would not.
        "health": make_key(data, "admin", tenant="acme", user="health")["key"],
    }
    with environment(env or {}):
        gw.start()
    return gw


@pytest.fixture(scope="module")
def gw(workdir):
    g = start_gateway(workdir, "data")
    yield g
    g.assert_clean_exit(g.stop())


@pytest.fixture(scope="module")
def hooked(workdir):
    """A gateway whose test hooks (-Dtest_hooks=true) make the worker running
    escape-seccomp make a forbidden system call, the one running escape-fork
    fork, and the one running escape-crash crash."""
    with open(BIN, "rb") as f:
        if b"SANDGATE_TEST_SECCOMP_TEMPLATE" not in f.read():
            pytest.skip(f"{BIN} has no sandbox test hooks (built without -Dtest_hooks=true)")
    g = start_gateway(workdir, "data-hooked", env={
        "SANDGATE_TEST_SECCOMP_TEMPLATE": "escape-seccomp",
        "SANDGATE_TEST_FORK_TEMPLATE": "escape-fork",
        "SANDGATE_TEST_CRASH_TEMPLATE": "escape-crash",
    })
    yield g
    g.assert_clean_exit(g.stop())


# ---- runs ----

def post_run(g, name, body, key, query=""):
    return requests.post(f"{g.url}/v1/templates/{name}/runs{query}", data=json.dumps(body),
                         headers={"Authorization": "Bearer " + key,
                                  "Content-Type": "application/json"},
                         timeout=RUN_TIMEOUT)


def run_ok(g, name, body, key):
    r = post_run(g, name, body, key)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["status"] == "succeeded", doc
    assert doc["template"] == name
    assert doc["error"] is None and doc["stopped_by"] is None, doc
    assert isinstance(doc["worker_pid"], int) and doc["worker_pid"] > 0, doc
    return doc


def run_failed(g, name, body, key, problem, code, limit=None):
    """A failed run: the problem, the run document inside it, error.code and stopped_by."""
    r = post_run(g, name, body, key)
    p = assert_problem(r, 422, problem)
    doc = p["run"]
    assert p["run_id"] == doc["id"] and doc["id"].startswith("run_"), p
    assert doc["trace_id"] == p["trace_id"], (doc["trace_id"], p["trace_id"])
    assert doc["template"] == name and doc["status"] == "failed", doc
    assert "output" not in doc or doc["output"] is None, doc
    assert doc["error"]["code"] == code, doc
    assert isinstance(doc["error"]["message"], str) and doc["error"]["message"], doc
    if limit is None:
        assert doc["stopped_by"] is None, doc
    else:
        assert doc["stopped_by"] is not None and doc["stopped_by"]["limit"] == limit, doc
    # Whatever the case tried to read, none of the worker's files came back.
    assert "root:x:0:0" not in r.text
    return doc


def assert_healthy(g):
    """The gateway answers, and the ordinary template still runs end to end."""
    assert g.proc.poll() is None, "the gateway died:\n" + g.log_text()[-4000:]
    assert g.get("/healthz").status_code == 200
    doc = run_ok(g, "onboard-contact", {"email": "ada@example.com", "name": "Ada"},
                 g.keys["health"])
    assert isinstance(doc["output"]["contact"], str) and doc["output"]["contact"], doc
    assert isinstance(doc["output"]["message"], str) and doc["output"]["message"], doc
    assert [c["capability"] for c in doc["calls"]] == ["crm.create_contact", "mail.send"], doc
    assert all(c["decision"] == "allowed" for c in doc["calls"]), doc


# ---- the corpus: (template, input, expected outcome) ----

def script_error(says):
    return ("script_error", says)


def limit(name, value=None):
    return ("limit", name, value)


def output(value):
    return ("output", value)


CASES = {
    # Bytecode: load() is text-only whatever mode is asked for; string.dump is absent.
    "bytecode-signature": ("escape-bytecode", {"how": "sig"},
                           script_error("attempt to load a binary chunk")),
    "bytecode-mode-b": ("escape-bytecode", {"how": "mode_b"},
                        script_error("attempt to load a binary chunk")),
    "bytecode-reader": ("escape-bytecode", {"how": "reader"},
                        script_error("attempt to load a binary chunk")),
    "bytecode-string-dump": ("escape-bytecode", {"how": "dump"},
                             script_error("string.dump is not available")),
    "bytecode-method-dump": ("escape-bytecode", {"how": "method"},
                             script_error("attempt to call a nil value (method 'dump')")),
    # The string metatable is locked: getmetatable("") is false.
    "strmeta-read-index": ("escape-strmeta", {"how": "index"},
                           script_error("attempt to index a boolean value")),
    "strmeta-set-index": ("escape-strmeta", {"how": "set"},
                          script_error("attempt to index a boolean value")),
    "strmeta-rawset": ("escape-strmeta", {"how": "rawset"},
                       script_error("bad argument #1 to 'rawset' (table expected, got boolean)")),
    "strmeta-setmetatable": ("escape-strmeta", {"how": "setmt"},
                             script_error("table expected, got string")),
    "strmeta-probe": ("escape-strmeta", {"how": "probe"},
                      output({"metatable": False, "dump": "nil", "pack": "nil", "same": True})),
    # The budget's stop cannot be caught, whatever catches errors.
    "pcall-swallow": ("escape-pcall", {"how": "pcall"},
                      limit("instructions", FAST_INSTRUCTIONS)),
    "xpcall-swallow": ("escape-pcall", {"how": "xpcall"},
                       limit("instructions", FAST_INSTRUCTIONS)),
    "pcall-nested": ("escape-pcall", {"how": "nested"},
                     limit("instructions", FAST_INSTRUCTIONS)),
    "close-handler-loops": ("escape-pcall", {"how": "close"},
                            limit("instructions", FAST_INSTRUCTIONS)),
    # One C call may not do unbounded work.
    "string-rep-huge": ("escape-patterns", {"how": "rep"}, limit("string_operation")),
    "string-find-catastrophic": ("escape-patterns", {"how": "find"},
                                 limit("string_operation")),
    "string-format-huge": ("escape-patterns", {"how": "format"}, limit("string_operation")),
    "table-concat-huge": ("escape-patterns", {"how": "concat"}, limit("string_operation")),
    "string-gsub-huge": ("escape-patterns", {"how": "gsub"}, limit("memory", PATTERN_MEMORY)),
    "string-format-width": ("escape-patterns", {"how": "width"},
                            script_error("invalid conversion")),
    # Finalizers would run with hooks off: setmetatable refuses any __gc.
    "gc-finalizer-loop": ("escape-gc", {"how": "gc"}, script_error("__gc")),
    "gc-false-then-function": ("escape-gc", {"how": "gc_false"}, script_error("__gc")),
    "gc-added-late-never-runs": ("escape-gc", {"how": "late"}, output("no finalizer ran")),
    # Memory bombs stop at the run's own memory limit.
    "memory-string-doubling": ("escape-memory", {"how": "string"},
                               limit("memory", BOMB_MEMORY)),
    "memory-table-growth": ("escape-memory", {"how": "table"}, limit("memory", BOMB_MEMORY)),
    # Coroutines share the one budget.
    "coroutine-yield-forever": ("escape-coroutine", {"how": "yield"},
                                limit("instructions", FAST_INSTRUCTIONS)),
    "coroutine-busy": ("escape-coroutine", {"how": "busy"},
                       limit("instructions", FAST_INSTRUCTIONS)),
    "coroutine-resume-swallow": ("escape-coroutine", {"how": "resume"},
                                 limit("instructions", FAST_INSTRUCTIONS)),
    "coroutine-spawn-forever": ("escape-coroutine", {"how": "spawn"},
                                limit("instructions", FAST_INSTRUCTIONS)),
    # Recursion: the Lua stack counts against memory; the C stack has Lua's own cap.
    "recursion-lua": ("escape-recursion", {"how": "plain"},
                      limit("memory", RECURSION_MEMORY)),
    "recursion-index": ("escape-recursion", {"how": "index"},
                        script_error("stack overflow")),
    "recursion-tostring": ("escape-recursion", {"how": "tostring"},
                           script_error("stack overflow")),
    # os, io, debug, require: absent, and the error names the missing global.
    "reach-os": ("escape-reach", {"how": "os"}, script_error("global 'os'")),
    "reach-io": ("escape-reach", {"how": "io"}, script_error("global 'io'")),
    "reach-debug": ("escape-reach", {"how": "debug"}, script_error("global 'debug'")),
    "reach-require": ("escape-reach", {"how": "require"}, script_error("global 'require'")),
    # /etc/passwd.
    "file-io-open": ("escape-files", {"how": "io"}, script_error("global 'io'")),
    "file-dofile": ("escape-files", {"how": "dofile"}, script_error("global 'dofile'")),
    "file-loadfile": ("escape-files", {"how": "loadfile"}, script_error("global 'loadfile'")),
    "file-load-path-is-source": ("escape-files", {"how": "load"},
                                 script_error("unexpected symbol near '/'")),
    "file-chunkname-only-a-name": ("escape-files", {"how": "chunkname"},
                                   script_error("/etc/passwd:1: read me")),
    # Sockets.
    "socket-require": ("escape-socket", {"how": "require"}, script_error("global 'require'")),
    "socket-loadlib": ("escape-socket", {"how": "loadlib"}, script_error("global 'package'")),
    "socket-popen": ("escape-socket", {"how": "popen"}, script_error("global 'io'")),
    "socket-undeclared-call": ("escape-socket", {"how": "ctx"},
                               output({"ok": False, "code": "capability_not_declared"})),
    # Log flooding: bounded log, then the budget.
    "log-flood": ("escape-flood", {"how": "flood"}, limit("instructions", 300000)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_escape_case_ends_in_a_named_outcome(gw, case):
    name, body, expect = CASES[case]
    key = gw.keys["acme"]
    if expect[0] == "output":
        doc = run_ok(gw, name, body, key)
        assert doc["output"] == expect[1], doc
    elif expect[0] == "script_error":
        doc = run_failed(gw, name, body, key, "template_failed", "script_error")
        assert expect[1] in doc["error"]["message"], doc["error"]
    else:
        doc = run_failed(gw, name, body, key, "template_limit", "limit_exceeded", expect[1])
        if expect[2] is not None:
            assert doc["stopped_by"]["value"] == expect[2], doc["stopped_by"]
    assert doc["tenant"] == "acme" and doc["user"] == "ann" and doc["mode"] == "sandbox", doc
    assert_healthy(gw)


def test_a_template_gives_its_runner_no_operation_the_runner_lacks(gw):
    for tenant in ("acme", "globex"):
        r = post_run(gw, "escape-privilege", {}, gw.keys[tenant])
        body = assert_problem(r, 403, "capability_forbidden")
        assert "calendar.create_event" in body["detail"], body
        assert "run" not in body and "run_id" not in body, body
    assert_healthy(gw)


def test_log_flood_keeps_a_bounded_log(gw):
    doc = run_failed(gw, "escape-flood", {"how": "flood"}, gw.keys["acme"],
                     "template_limit", "limit_exceeded", "instructions")
    logs = doc["logs"]
    assert 0 < len(logs) <= 1000, len(logs)
    assert len(json.dumps(logs)) < (1 << 20), len(json.dumps(logs))
    assert any("dropped" in line for line in logs[-2:]), logs[-2:]
    assert_healthy(gw)


def test_nothing_dangerous_is_reachable_by_any_path(gw):
    doc = run_ok(gw, "escape-reach", {"how": "probe"}, gw.keys["acme"])
    types = doc["output"]["types"]
    assert len(types) == 22, types
    assert {k: v for k, v in types.items() if v != "nil"} == {}, types
    # The globals are exactly the allowlist of src/sandbox/sg_lua_env.h, plus run.
    assert set(doc["output"]["globals"]) == {
        "_G", "_VERSION", "assert", "collectgarbage", "coroutine", "error", "getmetatable",
        "ipairs", "load", "math", "next", "pairs", "pcall", "print", "rawequal", "rawget",
        "rawlen", "rawset", "run", "select", "setmetatable", "string", "table", "tonumber",
        "tostring", "type", "utf8", "xpcall"}, doc["output"]["globals"]
    assert_healthy(gw)


CLEAN = {"global": "nil", "upper": "A", "evil": "nil", "insert": True, "pi": False,
         "type": "number"}


def test_state_planted_in_one_run_is_gone_in_the_next(gw):
    key = gw.keys["acme"]
    same_worker = 0
    for _ in range(3):
        planted = run_ok(gw, "escape-poison", {"phase": "poison"}, key)
        assert planted["output"] == {"planted": "pwned"}, planted  # it did work in its own run
        seen = run_ok(gw, "escape-poison", {"phase": "check"}, key)
        assert seen["output"] == CLEAN, seen
        same_worker += planted["worker_pid"] == seen["worker_pid"]
    # A fresh worker per run would pass trivially; at least once the check must have
    # run on the worker that was poisoned.
    assert same_worker >= 1, "no check ran on the poisoned worker"
    # Another user of the same tenant, and another tenant, see nothing either.
    run_ok(gw, "escape-poison", {"phase": "poison"}, key)
    assert run_ok(gw, "escape-poison", {"phase": "check"}, gw.keys["acme2"])["output"] == CLEAN
    assert run_ok(gw, "escape-poison", {"phase": "check"}, gw.keys["globex"])["output"] == CLEAN
    assert_healthy(gw)


def test_two_tenants_never_share_a_worker(gw):
    pids = {"acme": set(), "globex": set()}
    for _ in range(10):
        for tenant in ("acme", "globex"):
            doc = run_ok(gw, "escape-reach", {"how": "probe"}, gw.keys[tenant])
            assert doc["tenant"] == tenant, doc
            pids[tenant].add(doc["worker_pid"])
    assert pids["acme"] and pids["globex"], pids
    assert not pids["acme"] & pids["globex"], pids
    assert_healthy(gw)


def test_wall_clock_ends_a_run_its_instruction_budget_never_would(gw):
    start = time.monotonic()
    doc = run_failed(gw, "escape-wall", {}, gw.keys["acme"],
                     "template_limit", "limit_exceeded", "wall_time")
    elapsed = time.monotonic() - start
    assert doc["stopped_by"]["value"] == 200 and doc["stopped_by"]["unit"] == "ms", doc
    assert elapsed < 5, elapsed  # 10^12 instructions would take about an hour
    assert doc["usage"]["wall_ms"] >= 200, doc["usage"]
    assert_healthy(gw)


def test_wall_clock_ends_work_the_instruction_count_cannot_see(gw):
    start = time.monotonic()
    doc = run_failed(gw, "escape-slowconcat", {}, gw.keys["acme"],
                     "template_limit", "limit_exceeded", "wall_time")
    assert time.monotonic() - start < 5
    assert doc["stopped_by"]["value"] == 300, doc["stopped_by"]
    assert_healthy(gw)


def test_stored_run_matches_and_only_its_tenant_may_read_it(gw):
    key = gw.keys["acme"]
    failed = run_failed(gw, "escape-memory", {"how": "table"}, key,
                        "template_limit", "limit_exceeded", "memory")
    script = run_failed(gw, "escape-files", {"how": "io"}, key,
                        "template_failed", "script_error")
    succeeded = run_ok(gw, "escape-reach", {"how": "probe"}, key)
    for doc in (failed, script, succeeded):
        r = gw.get(f"/v1/runs/{doc['id']}", key=key)
        assert r.status_code == 200, r.text
        assert r.json() == doc
        # Another user of the same tenant may read it; another tenant may not know it exists.
        assert gw.get(f"/v1/runs/{doc['id']}", key=gw.keys["acme2"]).json() == doc
        assert_problem(gw.get(f"/v1/runs/{doc['id']}", key=gw.keys["globex"]), 404,
                       "run_unknown")
    assert_problem(gw.get("/v1/runs/run_000000000000ffffffffffffffff", key=key), 404,
                   "run_unknown")
    assert_healthy(gw)


def test_an_asynchronous_run_is_stopped_all_the_same(gw):
    key = gw.keys["acme"]
    r = post_run(gw, "escape-coroutine", {"how": "yield"}, key, query="?wait=false")
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "running" and r.headers["Location"] == body["links"]["self"]
    docs = []

    def finished():
        docs.append(gw.get(body["links"]["self"], key=key).json())
        return docs[-1].get("status") in ("succeeded", "failed")

    deadline = time.time() + 20
    while time.time() < deadline and not finished():
        time.sleep(0.05)
    doc = docs[-1]
    assert doc["status"] == "failed", doc
    assert doc["error"]["code"] == "limit_exceeded", doc
    assert doc["stopped_by"]["limit"] == "instructions", doc
    assert_problem(gw.get(body["links"]["self"], key=gw.keys["globex"]), 404, "run_unknown")
    assert_healthy(gw)


# ---- worker deaths, through the server's test hooks ----

@pytest.mark.parametrize("template", ["escape-seccomp", "escape-fork"])
def test_forbidden_syscall_kills_only_that_worker(hooked, template):
    acme, globex = hooked.keys["acme"], hooked.keys["globex"]
    other = run_ok(hooked, "escape-reach", {"how": "probe"}, globex)
    doc = run_failed(hooked, template, {}, acme, "sandbox_violation", "forbidden_syscall")
    killed = doc["worker_pid"]
    assert wait_for(lambda: not alive(killed)), f"worker {killed} is still there"
    # Only that worker: the other tenant's worker lives on (the tests share the
    # gateway's pid namespace, so worker_pid is a pid here too).
    assert alive(other["worker_pid"]), other["worker_pid"]
    after = run_ok(hooked, "escape-reach", {"how": "probe"}, acme)
    assert after["worker_pid"] != killed, "the killed worker was handed out again"
    run_ok(hooked, "escape-reach", {"how": "probe"}, globex)
    assert_healthy(hooked)


def test_crashed_worker_is_named_and_replaced(hooked):
    acme = hooked.keys["acme"]
    doc = run_failed(hooked, "escape-crash", {}, acme, "sandbox_violation", "worker_crashed")
    crashed = doc["worker_pid"]
    assert wait_for(lambda: not alive(crashed)), f"worker {crashed} is still there"
    assert run_ok(hooked, "escape-reach", {"how": "probe"}, acme)["worker_pid"] != crashed
    run_ok(hooked, "escape-reach", {"how": "probe"}, hooked.keys["globex"])
    assert_healthy(hooked)
