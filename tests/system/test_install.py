"""An installed copy works on its own: `meson install` puts the examples
under DATADIR/sandgate, `serve --demo` finds them relative to the executable
from any working directory, and the binary names no directory of the source
tree it was built from."""

import json
import os
import re
import shutil
import signal
import subprocess

import pytest
import requests

from conftest import BIN, CONTACT_MIN, ROOT, free_port, wait_for

BUILD = os.path.dirname(os.path.realpath(BIN))


def _installed_path(dest, build_path):
    out = subprocess.run(["meson", "introspect", "--installed", BUILD], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return dest + json.loads(out)[build_path]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The build under test installed into a scratch DESTDIR, stripped as a
    package would be: debug information names the build directory (a
    debugger needs it), the program itself must not."""
    if not os.path.isdir(os.path.join(BUILD, "meson-info")):
        pytest.skip(f"{BIN} is not in a meson build directory")
    dest = str(tmp_path_factory.mktemp("destdir"))
    p = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", dest, "--no-rebuild",
                        "--strip", "--quiet"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return _installed_path(dest, os.path.join(BUILD, "sandgate"))


def _read_quick_start(proc):
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "refused at once instead" in line:
            break
    return "".join(lines)


def test_installed_demo_runs_from_anywhere(installed, tmp_path):
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "SANDGATE_EXAMPLES"}
    port = free_port()
    log = open(tmp_path / "gateway.log", "w")
    proc = subprocess.Popen([installed, "serve", "--demo", "--data-dir", str(tmp_path / "data"),
                             "--listen", f"127.0.0.1:{port}"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        text = _read_quick_start(proc)
        share = os.path.join(os.path.dirname(os.path.dirname(installed)), "share", "sandgate",
                             "examples")
        assert f"Its connectors, templates and policies: {share}\n" in text, text
        keys = dict(re.findall(r"^\s+(explorer|maker|admin)\s+\(\w+\)\s+(sgk_\S+)$", text, re.M))
        url = f"http://127.0.0.1:{port}"

        def ready():
            try:
                return requests.get(url + "/readyz", timeout=1).status_code == 200
            except requests.RequestException:
                return False
        assert wait_for(ready, timeout=20), (tmp_path / "gateway.log").read_text()
        r = requests.post(url + "/v1/connectors/crm/create_contact", json=CONTACT_MIN,
                          headers={"Authorization": "Bearer " + keys["explorer"]}, timeout=5)
        assert r.status_code == 200, r.text
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
        log.close()
    text = (tmp_path / "gateway.log").read_text()
    assert "Sanitizer" not in text and "runtime error:" not in text, text[-4000:]
    assert rc == 0, text[-4000:]


def test_installed_binary_names_no_source_directory(installed):
    with open(installed, "rb") as f:
        found = ROOT.encode() in f.read()
    assert not found, f"{installed} holds the source path {ROOT}"


def test_a_lone_binary_says_where_to_find_the_examples(installed, tmp_path):
    """Copied away from its share/ directory, the demo says what to do."""
    lone = tmp_path / "bin" / "sandgate"
    lone.parent.mkdir()
    shutil.copy(installed, lone)
    env = {k: v for k, v in os.environ.items() if k != "SANDGATE_EXAMPLES"}
    p = subprocess.run([str(lone), "serve", "--demo", "--data-dir", str(tmp_path / "data"),
                        "--listen", f"127.0.0.1:{free_port()}"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "meson install" in p.stderr and "SANDGATE_EXAMPLES" in p.stderr, p.stderr
