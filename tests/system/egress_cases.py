"""Egress guard cases, run only inside a network namespace by test_egress.py.
Each refused call must never reach an upstream and must be a 403
egress_denied that names the rule, never the address."""

import json
import socket

import pytest

from conftest import assert_problem, metric, run_cli, wait_for
from mock_upstream import Upstream
from test_live import SECRET, Live, connector


@pytest.fixture(autouse=True)
def only_inside_a_namespace():
    # The namespace has loopback alone: a packet to anywhere else has no route.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(OSError):
            s.connect(("192.0.2.1", 9))
    finally:
        s.close()


@pytest.fixture
def upstream():
    u = Upstream().start()
    yield u
    u.stop()


def refused(env, upstream, body=None):
    r = env.call("get_item", body or {"id": "1"})
    problem = assert_problem(r, 403, "egress_denied")
    assert upstream.count() == 0
    return problem


def one(tmp_path, base_url, extra="", allow=True):
    text = connector("shop", base_url, extra=extra)
    if not allow:
        text = text.replace('egress: { allow: ["127.0.0.1/32"] }\n', "")
    return Live(tmp_path, {"shop": text}, {"shop": SECRET})


def test_the_metadata_address_is_refused(tmp_path, upstream):
    env = one(tmp_path, "http://169.254.169.254/latest", allow=False)
    try:
        p = refused(env, upstream)
        assert "169.254" not in json.dumps(p)
    finally:
        env.stop()


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "0x7f.1", "0177.0.0.1", "127.1",
                                  "[::ffff:127.0.0.1]", "[::1]"])
def test_loopback_in_every_spelling_is_refused_unless_allowlisted(tmp_path, upstream, host):
    env = one(tmp_path, f"http://{host}:{upstream.port}", allow=False)
    try:
        p = refused(env, upstream)
        assert "127.0.0.1" not in p["detail"] and "::1" not in p["detail"]
    finally:
        env.stop()


def test_a_name_resolving_to_loopback_is_refused_when_not_allowlisted(tmp_path, upstream):
    extra_env = f'resolve: ["api.shop.test:{upstream.port}:127.0.0.1"]'
    text = connector("shop", f"http://api.shop.test:{upstream.port}")
    text = text.replace('egress: { allow: ["127.0.0.1/32"] }\n', "")
    text = text.replace("connect_timeout: 1s }", f"connect_timeout: 1s, {extra_env} }}")
    env = Live(tmp_path, {"shop": text}, {"shop": SECRET})
    try:
        refused(env, upstream)
    finally:
        env.stop()


def test_an_allowlisted_name_pinned_to_loopback_is_reached(tmp_path, upstream):
    extra_env = f'resolve: ["api.shop.test:{upstream.port}:127.0.0.1"]'
    text = connector("shop", f"http://api.shop.test:{upstream.port}")
    text = text.replace('allow: ["127.0.0.1/32"]', 'allow: ["api.shop.test"]')
    text = text.replace("connect_timeout: 1s }", f"connect_timeout: 1s, {extra_env} }}")
    env = Live(tmp_path, {"shop": text}, {"shop": SECRET})
    try:
        r = env.call("get_item", {"id": "1"})
        assert r.status_code == 200, r.text
        assert upstream.last()["headers"]["host"].startswith("api.shop.test")
    finally:
        env.stop()


def test_a_redirect_to_the_metadata_address_is_refused(tmp_path, upstream):
    env = one(tmp_path, upstream.url, extra="redirects: 3")
    try:
        upstream.answer = lambda req: (302, {"Location": "http://169.254.169.254/latest/meta-data"},
                                       b"")
        r = env.call("get_item", {"id": "1"})
        problem = assert_problem(r, 403, "egress_denied")
        assert upstream.count() == 1  # the first hop only
        assert "169.254" not in json.dumps(problem)
    finally:
        env.stop()


def test_redirects_are_refused_unless_the_connector_allows_them(tmp_path, upstream):
    env = one(tmp_path, upstream.url)
    try:
        upstream.answer = lambda req: (302, {"Location": "/api/elsewhere"}, b"")
        assert_problem(env.call("get_item", {"id": "1"}), 502, "redirect_refused")
    finally:
        env.stop()


def test_a_followed_redirect_to_another_origin_carries_no_credential(tmp_path, upstream):
    other = Upstream().start()
    try:
        env = one(tmp_path, upstream.url, extra="redirects: 2")
        try:
            # Another port is another origin (RFC 6454), though the address is allowlisted.
            upstream.answer = lambda req: (307, {"Location": f"http://127.0.0.1:{other.port}/x"},
                                           b"")
            other.answer = lambda req: (200, {}, {"id": "1", "name": "moved"})
            r = env.call("get_item", {"id": "1"})
            assert r.status_code == 200, r.text
            assert "authorization" not in other.last()["headers"]
            assert upstream.last()["headers"]["authorization"] == "Bearer " + SECRET
        finally:
            env.stop()
    finally:
        other.stop()


def test_policy_endpoint_rules_deny_even_what_a_connector_allows(tmp_path, upstream):
    env = one(tmp_path, upstream.url)
    try:
        (env.defs / "policies" / "egress.yaml").write_text(
            "kind: policy\nname: egress\ndescription: No loopback.\n"
            "egress:\n  rules:\n    - { deny: \"127.0.0.0/8\" }\n  default: allow\n")
        before = metric(env.gw, "sandgate_snapshot_generation")
        run_cli("apply", "-f", str(env.defs), data_dir=env.data)
        env.gw.signal(1)  # SIGHUP: reload the definitions
        assert wait_for(lambda: metric(env.gw, "sandgate_snapshot_generation") > before)
        p = refused(env, upstream)
        assert "policy" in p["detail"]
    finally:
        env.stop()


def test_a_kept_connection_opened_for_one_connector_is_judged_again_for_another(tmp_path,
                                                                             upstream):
    """Connector vault may reach 127.0.0.1; shop may reach only w.test.  A call to
    vault leaves a kept connection to 127.0.0.1 on the I/O thread; shop's upstream
    then redirects there.  The hop would ride that connection, so it is judged for
    shop before anything is sent, and refused."""
    import requests

    w = Upstream().start()
    try:
        shop = connector("shop", f"http://w.test:{w.port}", extra="redirects: 1")
        shop = shop.replace('allow: ["127.0.0.1/32"]', 'allow: ["w.test"]')
        shop = shop.replace("connect_timeout: 1s }",
                            f'connect_timeout: 1s, resolve: ["w.test:{w.port}:127.0.0.1"] }}')
        env = Live(tmp_path, {"shop": shop, "vault": connector("vault", upstream.url)},
                   {"shop": SECRET, "vault": SECRET})
        try:
            upstream.answer = lambda req: (200, {}, {"id": "1", "name": "internal"})
            w.answer = lambda req: (302, {"Location": f"{upstream.url}/items/1"}, b"")
            # One client connection: both calls are served by the same I/O thread.
            with requests.Session() as s:
                assert env.call("get_item", {"id": "1"}, connector="vault",
                                session=s).status_code == 200
                problem = assert_problem(env.call("get_item", {"id": "1"}, session=s), 403,
                                         "egress_denied")
            assert "127.0.0.1" not in problem["detail"]
            assert upstream.count() == 1  # vault's own call only
        finally:
            env.stop()
    finally:
        w.stop()
