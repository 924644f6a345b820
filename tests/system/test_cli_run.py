"""`sandgate run` and `sandgate sandbox status` against a running gateway:
what a person sees, what --json gives a script, and the exit status of each."""

import json
import os
import re
import subprocess

from conftest import BIN, free_port, wait_for

INPUT = {"email": "ada@example.com", "name": "Ada"}


def cli(*args, stdin=None, env_key=None):
    """The CLI with SANDGATE_KEY unset unless env_key is given."""
    env = {k: v for k, v in os.environ.items() if k != "SANDGATE_KEY"}
    if env_key is not None:
        env["SANDGATE_KEY"] = env_key
    return subprocess.run([BIN, *args], input=stdin, capture_output=True, text=True,
                          timeout=90, env=env)


def input_file(tmp_path, value=INPUT, name="input.json"):
    path = tmp_path / name
    path.write_text(json.dumps(value) if not isinstance(value, str) else value)
    return str(path)


def run(gw, *args, key=None):
    return cli("run", "onboard-contact", "--url", gw.url, "--key", key or gw.keys["power"], *args)


def test_run_prints_output_and_one_trace_line_per_call(gateway, tmp_path):
    p = run(gateway, "--input", input_file(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    head = p.stdout.splitlines()[0]
    assert re.match(r"run_\S+\s+onboard-contact 1\.0\.0\s+succeeded", head), p.stdout
    out = p.stdout
    assert "output:" in out and '"contact":' in out and '"message":' in out
    assert "logs:\n  created contact " in out
    assert re.search(r"^trace [0-9a-f]{32}$", out, re.M), out
    assert re.search(r"^\s+1\s+crm\.create_contact\s+allowed\s+200\s+[\d.]+ ms\s+cost ", out, re.M)
    assert re.search(r"^\s+2\s+mail\.send\s+allowed\s+200\s+[\d.]+ ms\s+cost ", out, re.M)
    assert p.stderr == ""


def test_run_json_is_the_run_document(gateway, tmp_path):
    p = run(gateway, "--input", input_file(tmp_path), "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    assert doc["status"] == "succeeded"
    assert doc["output"]["contact"] and len(doc["trace_id"]) == 32
    assert [c["capability"] for c in doc["calls"]] == ["crm.create_contact", "mail.send"]


def test_run_reads_stdin_and_the_key_from_the_environment(gateway):
    p = cli("run", "onboard-contact", "--input", "-", "--url", gateway.url, "--json",
            stdin=json.dumps(INPUT), env_key=gateway.keys["power"])
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["status"] == "succeeded"


def test_no_wait_prints_the_run_id_to_follow(gateway, tmp_path):
    p = run(gateway, "--input", input_file(tmp_path), "--no-wait")
    assert p.returncode == 0, p.stdout + p.stderr
    run_id = re.match(r"(run_\w+)\s+running", p.stdout).group(1)
    assert f"follow it: GET {gateway.url}/v1/runs/{run_id}" in p.stdout
    key = gateway.keys["power"]
    assert wait_for(lambda: gateway.get(f"/v1/runs/{run_id}", key=key).json().get("status")
                    == "succeeded", timeout=10)


def test_bad_key_fails_with_the_gateways_remediation(gateway, tmp_path):
    p = run(gateway, "--input", input_file(tmp_path), key="sgk_not_a_real_key")
    assert p.returncode == 1
    assert "the gateway answered 401 " in p.stderr, p.stderr
    assert "\n  remediation: " in p.stderr
    p = run(gateway, "--input", input_file(tmp_path), "--json", key="sgk_not_a_real_key")
    assert p.returncode == 1
    assert json.loads(p.stdout)["status"] == 401


def test_invalid_input_names_the_field(gateway, tmp_path):
    p = run(gateway, "--input", input_file(tmp_path, {"name": "Ada"}))
    assert p.returncode == 1
    assert "/email" in p.stderr and "remediation: " in p.stderr, p.stderr


def test_unknown_template_is_refused(gateway):
    p = cli("run", "no-such-template", "--url", gateway.url, "--key", gateway.keys["power"])
    assert p.returncode == 1
    assert "the gateway answered 404 " in p.stderr, p.stderr


def test_unreachable_gateway_is_a_clear_error():
    url = f"http://127.0.0.1:{free_port()}"
    for args in (("run", "onboard-contact", "--key", "sgk_x"), ("sandbox", "status")):
        p = cli(*args, "--url", url)
        assert p.returncode == 1, p.stderr
        assert f"cannot connect to the gateway at {url}" in p.stderr
        assert "sandgate serve" in p.stderr
        assert p.stdout == ""


def test_usage_errors_exit_2_and_send_nothing(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: usage must fail first
    p = cli("run", "--url", url, "--key", "sgk_x")
    assert p.returncode == 2 and "exactly one TEMPLATE" in p.stderr
    p = cli("run", "onboard-contact", "--url", url)
    assert p.returncode == 2 and "SANDGATE_KEY" in p.stderr
    p = cli("run", "onboard-contact", "--key", "sgk_x", "--url", "127.0.0.1:8080")
    assert p.returncode == 2 and "--url must look like http://HOST:PORT" in p.stderr
    bad = input_file(tmp_path, '{"email": "a@b.c",\n "email": "d@e.f"}')
    p = cli("run", "onboard-contact", "--key", "sgk_x", "--url", url, "--input", bad)
    assert p.returncode == 2
    assert f"{bad}:2:" in p.stderr and "duplicate object key" in p.stderr, p.stderr
    p = cli("run", "onboard-contact", "--key", "sgk_x", "--url", url, "--input", "/nonexistent")
    assert p.returncode == 2 and "cannot read --input" in p.stderr
    p = cli("sandbox", "status", "extra", "--url", url)
    assert p.returncode == 2
    assert cli("sandbox", "start").returncode == 2


def test_help_exits_0_with_usage_on_stdout():
    for cmd, want in ((["run"], "usage: sandgate run TEMPLATE"),
                      (["sandbox"], "usage: sandgate sandbox status"),
                      (["sandbox", "status"], "usage: sandgate sandbox status")):
        p = cli(*cmd, "--help")
        assert p.returncode == 0, p.stderr
        assert p.stdout.startswith(want), p.stdout
        assert p.stderr == ""


def test_sandbox_status_json_is_the_readyz_member(gateway):
    p = cli("sandbox", "status", "--url", gateway.admin_url, "--json")
    sb = json.loads(p.stdout)
    assert "enabled" in sb
    assert p.returncode == (0 if sb["enabled"] and sb.get("ready") else 1), p.stderr
    live = gateway.get("/readyz").json()["sandbox"]
    assert sb["enabled"] == live["enabled"]
    if sb["enabled"]:
        assert sb["isolation"] == live["isolation"]
        assert sb["cgroups"] == live["cgroups"]


def test_sandbox_status_for_people_lists_each_ceiling(gateway):
    p = cli("sandbox", "status", "--url", gateway.admin_url)
    sb = gateway.get("/readyz").json()["sandbox"]
    if not sb["enabled"]:
        assert p.stdout.startswith("sandbox: disabled") and p.returncode == 1
        return
    assert p.stdout.startswith("sandbox: enabled, ready" if sb["ready"] else
                               "sandbox: enabled, NOT ready: "), p.stdout
    assert f"\nisolation: {sb['isolation']}\n" in p.stdout
    assert re.search(r"^workers: \d+ idle, \d+ busy, at most \d+", p.stdout, re.M)
    if sb["cgroups"] is None:
        assert "\ncgroups: off" in p.stdout
        return
    for ctrl, c in sb["cgroups"]["ceilings"].items():
        line = next(l for l in p.stdout.splitlines() if l.split()[:1] == [ctrl])
        if not c["configured"]:
            assert line.endswith("not configured")
        elif c["enforced"]:
            assert line.endswith(f"{c['ceiling']}, enforced via cgroup {c['version']}"), line
        else:
            assert f"{c['ceiling']}, not enforced: " in line, line
