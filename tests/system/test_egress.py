"""The egress guard, end to end.  Every case points a connector at an
address the guard must refuse, so the cases run inside a network namespace
this test creates (`unshare -n`, only loopback up): a broken guard then
fails with "network unreachable" instead of sending a packet anywhere.

The cases themselves are in egress_cases.py (not collected on its own: its
name does not start with test_); this test runs pytest on it inside the
namespace and shows its report when anything fails."""

import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def test_every_egress_case_passes_inside_a_network_namespace():
    if not shutil.which("unshare") or not shutil.which("ip"):
        pytest.fail("unshare(1) and ip(8) are needed (scripts/install-deps installs them)")
    # Root makes the namespace directly; anyone else maps themselves to root in a user namespace.
    flags = ["-n"] if os.geteuid() == 0 else ["-rn"]
    script = ("ip link set lo up && exec \"$0\" -m pytest -q -p no:cacheprovider "
              "-o python_files=egress_cases.py \"$1\"")
    p = subprocess.run(["unshare", *flags, "sh", "-c", script, sys.executable,
                        os.path.join(HERE, "egress_cases.py")],
                       capture_output=True, text=True, timeout=600, cwd=HERE)
    assert p.returncode == 0, p.stdout[-8000:] + p.stderr[-4000:]
    assert " passed" in p.stdout, p.stdout
