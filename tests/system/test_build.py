"""What a build people run contains: a plain `meson setup` has no test hooks
and does not turn warnings into errors.  The test builds (the Makefile's,
which the other system tests run against) do both.

Building a whole release binary takes minutes on two cores, so this sets up
a default build directory and compiles only the objects whose source names a
SANDGATE_TEST_* variable: those are the only places a hook can come from."""

import glob
import json
import os
import shutil
import subprocess

import pytest

from conftest import BIN, ROOT

HOOK = b"SANDGATE_TEST_"


def _meson(*args, cwd=None, timeout=300):
    p = subprocess.run(["meson", *args], cwd=cwd, capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, f"meson {' '.join(args)} failed:\n{p.stdout}\n{p.stderr}"
    return p.stdout


def _hook_sources():
    """Every file under src/ that names a hook variable, relative to ROOT."""
    out = []
    for path in glob.glob(os.path.join(ROOT, "src", "**", "*.c"), recursive=True):
        with open(path, "rb") as f:
            if HOOK in f.read():
                out.append(os.path.relpath(path, ROOT))
    return sorted(out)


@pytest.fixture(scope="module")
def default_build(tmp_path_factory):
    if shutil.which("meson") is None or shutil.which("ninja") is None:
        pytest.fail("meson and ninja are missing: scripts/install-deps installs them")
    build = str(tmp_path_factory.mktemp("default") / "build")
    _meson("setup", build, ROOT)
    return build


def _options(build):
    opts = json.loads(_meson("introspect", "--buildoptions", build))
    return {o["name"]: o["value"] for o in opts}


def test_a_plain_setup_has_no_hooks_and_no_werror(default_build):
    opts = _options(default_build)
    assert opts["test_hooks"] is False
    assert opts["werror"] is False


def test_a_plain_build_compiles_the_hooks_out(default_build):
    sources = _hook_sources()
    assert sources, "no source names SANDGATE_TEST_*: update this test"
    with open(os.path.join(default_build, "compile_commands.json")) as f:
        commands = {os.path.normpath(os.path.join(default_build, c["file"])): c
                    for c in json.load(f)}
    for src in sources:
        cmd = commands[os.path.join(ROOT, src)]
        assert "-DSG_TEST_HOOKS" not in cmd["command"], cmd["command"]
        p = subprocess.run(["ninja", "-C", default_build, cmd["output"]], capture_output=True,
                           text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        with open(os.path.join(default_build, cmd["output"]), "rb") as f:
            hooked = HOOK in f.read()
        assert not hooked, f"{src} keeps a test hook in a plain build"


def test_the_binary_under_test_has_the_hooks():
    """The other system tests break workers through the hooks: a test build
    without them would skip or fail those tests for the wrong reason."""
    with open(BIN, "rb") as f:
        hooked = HOOK in f.read()
    assert hooked, f"{BIN} was built without -Dtest_hooks=true (make system sets it)"
