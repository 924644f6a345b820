"""The transport's own limits, over real sockets: framing, slow clients,
connection caps, descriptor exhaustion, the admin listener and floods of
requests without a key."""

import json
import secrets
import socket
import subprocess
import time

import requests

from conftest import (BIN, CONTACT_MIN, EXAMPLES, Gateway, assert_problem, free_port, make_key,
                      run_cli, wait_for)

BODY = json.dumps(CONTACT_MIN).encode()


def head(key, extra=b"", path=b"/v1/connectors/crm/create_contact"):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
            (b"Authorization: Bearer " + key.encode() + b"\r\n" if key else b"") + extra +
            b"\r\n")


def read_reply(s, timeout=10.0):
    """One HTTP reply: (status, headers (lower-case names), body bytes)."""
    s.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a reply: {buf!r}")
        buf += chunk
    top, rest = buf.split(b"\r\n\r\n", 1)
    lines = top.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:n]


def closed_by_peer(s, timeout=10.0):
    """True once the gateway has closed the connection (EOF or reset)."""
    s.settimeout(timeout)
    try:
        while True:
            if s.recv(65536) == b"":
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def exchange(gw, raw):
    with socket.create_connection(("127.0.0.1", gw.port)) as s:
        s.sendall(raw)
        status, headers, body = read_reply(s)
        return status, headers, body, closed_by_peer(s)


def assert_framing_refused(status, headers, body, closed, why):
    assert status == 400, (status, body)
    assert headers["content-type"].startswith("application/problem+json")
    problem = json.loads(body)
    assert problem["code"] == "request_invalid"
    assert why in problem["detail"], problem
    assert headers.get("connection", "").lower() == "close"
    assert closed, "the connection stayed open after an ambiguous request"


# --- framing (RFC 9112 section 6.3) -------------------------------------------


def test_two_differing_content_lengths_are_refused_and_the_connection_closed(gateway):
    key = gateway.keys["power"]
    raw = head(key, b"Content-Length: %d\r\nContent-Length: 5\r\n" % len(BODY)) + BODY
    assert_framing_refused(*exchange(gateway, raw), "different values")


def test_a_signed_content_length_is_refused(gateway):
    key = gateway.keys["power"]
    raw = head(key, b"Content-Length: +%d\r\n" % len(BODY)) + BODY
    assert_framing_refused(*exchange(gateway, raw), "digits only")


def test_equal_duplicate_content_lengths_are_one_length(gateway):
    """RFC 9112 lets a recipient take copies of one value as that value."""
    key = gateway.keys["power"]
    raw = head(key, b"Content-Length: %d\r\nContent-Length: 0%d\r\n" % (len(BODY), len(BODY))) + BODY
    status, headers, body, _ = exchange(gateway, raw)
    assert status == 200, body
    assert json.loads(body)["email"] == CONTACT_MIN["email"]


def test_transfer_encoding_with_content_length_is_refused(gateway):
    """libevent refuses this pair itself (its own HTML 400): keep it that way."""
    key = gateway.keys["power"]
    chunked = b"%x\r\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n"
    raw = head(key, b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(BODY)) + chunked
    status, headers, body, closed = exchange(gateway, raw)
    assert status == 400, body
    assert closed


# --- helpers for gateways of their own -----------------------------------------


def start_gateway(tmp_path, config, extra_args=(), popen=None, name="gw"):
    data = str(tmp_path / name / "data")
    run_cli("apply", "-f", EXAMPLES, data_dir=data)
    cfg = tmp_path / name / "sandgate.yaml"
    cfg.write_text(config)
    gw = Gateway(data, config=str(cfg), extra_args=extra_args, popen=popen)
    gw.key = make_key(data, "admin", user="transport")["key"]
    return gw.start()


# --- operator endpoints --------------------------------------------------------


def test_metrics_and_readyz_details_are_on_the_admin_listener_only(gateway):
    r = requests.get(gateway.url + "/metrics", headers={"Authorization": "Bearer " +
                                                        gateway.keys["admin"]}, timeout=10)
    assert "admin listener" in assert_problem(r, 404, "route_not_found")["detail"]
    r = requests.get(gateway.url + "/readyz", timeout=10)
    assert r.status_code == 200
    bare = r.json()
    assert set(bare) == {"status", "checks"} and bare["status"] == "ready", bare
    assert all(v == {"ok": True} for v in bare["checks"].values()), bare
    r = gateway.admin_get("/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    assert "sandgate_requests_total" in r.text
    detailed = gateway.admin_get("/readyz").json()
    assert "sandbox" in detailed and detailed["checks"]["snapshot"]["connectors"] >= 3
    assert gateway.admin_get("/healthz").json() == {"status": "alive"}
    r = gateway.admin_get("/v1/catalog")
    assert "/metrics" in assert_problem(r, 404, "route_not_found")["detail"]


def write_token(tmp_path, mode=0o600):
    token = secrets.token_urlsafe(32)
    path = tmp_path / "admin.token"
    path.write_text(token + "\n")
    path.chmod(mode)
    return token, path


def test_the_admin_token_shows_them_on_the_public_listener(tmp_path):
    token, path = write_token(tmp_path)
    gw = start_gateway(tmp_path, f"admin_token_file: {path}\n",
                       extra_args=["--admin-listen", "off"])
    try:
        bearer = {"Authorization": "Bearer " + token}
        r = requests.get(gw.url + "/metrics", headers=bearer, timeout=10)
        assert r.status_code == 200 and "sandgate_requests_total" in r.text
        assert "sandbox" in requests.get(gw.url + "/readyz", headers=bearer, timeout=10).json()
        wrong = {"Authorization": "Bearer " + token[:-1] + ("A" if token[-1] != "A" else "B")}
        assert_problem(requests.get(gw.url + "/metrics", headers=wrong, timeout=10), 404,
                       "route_not_found")
        assert "sandbox" not in requests.get(gw.url + "/readyz", headers=wrong, timeout=10).json()
        with socket.socket() as s:  # admin_listen: off
            assert s.connect_ex(("127.0.0.1", gw.admin_port)) != 0
        # The CLI says where the details are, and reads them with the token.
        p = subprocess.run([BIN, "sandbox", "status", "--url", gw.url], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 1 and "admin listener" in p.stderr, p.stderr
        p = subprocess.run([BIN, "sandbox", "status", "--url", gw.url, "--admin-token-file",
                            str(path), "--json"], capture_output=True, text=True, timeout=30)
        assert "enabled" in json.loads(p.stdout), p.stderr
    finally:
        gw.assert_clean_exit(gw.stop())


def test_an_admin_token_others_can_read_stops_the_start(tmp_path):
    _, path = write_token(tmp_path, mode=0o644)
    data = str(tmp_path / "data")
    run_cli("apply", "-f", EXAMPLES, data_dir=data)
    cfg = tmp_path / "sandgate.yaml"
    cfg.write_text(f"admin_token_file: {path}\n")
    p = subprocess.run([BIN, "serve", "--config", str(cfg), "--data-dir", data, "--listen",
                        f"127.0.0.1:{free_port()}", "--admin-listen", "off"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert f"chmod 600 {path}" in p.stderr, p.stderr
