"""The transport's own limits, over real sockets: framing, slow clients,
connection caps, descriptor exhaustion, the admin listener and floods of
requests without a key."""

import json
import os
import re
import resource
import secrets
import socket
import sqlite3
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


def metric(gw, name):
    """A counter or gauge from the admin listener's /metrics (0 when absent)."""
    m = re.search(r"^" + re.escape(name) + r" (-?\d+)$", gw.admin_get("/metrics").text, re.M)
    return int(m.group(1)) if m else 0


def open_connections(gw):
    return metric(gw, "sandgate_connections_open")


def healthz(s):
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    return read_reply(s)[0]


def send_slowly(s, data, deadline, pace=0.5):
    """Sends one byte per `pace` seconds until done, the gateway answers or
    closes, or `deadline` (monotonic) passes.  Returns what came back."""
    got = b""
    s.settimeout(pace)
    for i in range(len(data)):
        if time.monotonic() > deadline:
            break
        try:
            s.send(data[i:i + 1])
        except OSError:
            break
        try:
            chunk = s.recv(65536)
            if chunk == b"":
                break
            got += chunk
        except socket.timeout:
            pass
        except ConnectionResetError:
            break
    return got


def parse_reply(raw):
    top, _, body = raw.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    return int(lines[0].split()[1]), headers, body


# --- slow clients --------------------------------------------------------------

SLOW = "limits:\n  header_timeout: 1s\n  body_timeout: 2s\n  read_timeout: 30s\n"


def test_a_head_sent_byte_by_byte_is_cut_with_408_at_the_header_deadline(tmp_path):
    gw = start_gateway(tmp_path, SLOW)
    try:
        raw = head(gw.key, b"Content-Length: %d\r\n" % len(BODY)) + BODY
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", gw.port)) as s:
            # 2 bytes a second: without a deadline the head alone would take a minute.
            got = send_slowly(s, raw, deadline=started + 3 * 1 + 0.5)
            elapsed = time.monotonic() - started
            assert got, "the gateway did not answer within 3x the header deadline"
            status, headers, body = parse_reply(got)
            assert status == 408, got
            assert headers["content-type"] == "application/problem+json"
            assert headers["connection"] == "close"
            problem = json.loads(body)
            assert problem["code"] == "request_timeout"
            assert "limits.header_timeout" in problem["detail"]
            assert closed_by_peer(s, timeout=5)
        # Not before the deadline (libevent's coarse clock may fire a tick early).
        assert elapsed >= 0.95, elapsed
        assert metric(gw, 'sandgate_request_timeouts_total{phase="head"}') == 1
        assert any(l.get("phase") == "head" and "408" in l["msg"] for l in gw.log_lines())
    finally:
        gw.assert_clean_exit(gw.stop())


def test_a_body_sent_byte_by_byte_is_cut_with_408_at_the_body_deadline(tmp_path):
    gw = start_gateway(tmp_path, SLOW)
    try:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", gw.port)) as s:
            s.sendall(head(gw.key, b"Content-Length: %d\r\n" % len(BODY)))
            # The body has begun by the header deadline, so it gets body_timeout more.
            got = send_slowly(s, BODY, deadline=started + 3 * (1 + 2) + 0.5)
            elapsed = time.monotonic() - started
            assert got, "the gateway did not answer within 3x the deadlines"
            status, headers, body = parse_reply(got)
            assert status == 408, got
            assert "limits.body_timeout" in json.loads(body)["detail"]
            assert closed_by_peer(s, timeout=5)
        # Past the header deadline by far: the body was given its own time.
        assert elapsed >= 2.9, elapsed
        assert metric(gw, 'sandgate_request_timeouts_total{phase="body"}') == 1
    finally:
        gw.assert_clean_exit(gw.stop())


def test_prompt_requests_on_a_kept_alive_connection_are_not_cut(tmp_path):
    """The next head is timed from the previous reply plus idle_timeout: a
    connection may idle between requests past header_timeout."""
    gw = start_gateway(tmp_path, SLOW)
    try:
        raw = head(gw.key, b"Content-Length: %d\r\n" % len(BODY)) + BODY
        with socket.create_connection(("127.0.0.1", gw.port)) as s:
            for _ in range(3):
                s.sendall(raw)
                assert read_reply(s)[0] == 200
                time.sleep(1.5)  # idle, longer than header_timeout
        assert metric(gw, 'sandgate_request_timeouts_total{phase="head"}') == 0
    finally:
        gw.assert_clean_exit(gw.stop())


# --- connection caps -----------------------------------------------------------


def check_cap(gw, n, reason):
    assert wait_for(lambda: open_connections(gw) == 0, timeout=10), open_connections(gw)
    held = []
    try:
        for i in range(n):  # the (n-1)-th and the n-th are accepted and served
            s = socket.create_connection(("127.0.0.1", gw.port))
            held.append(s)
            assert healthz(s) == 200, i
        assert open_connections(gw) == n
        extra = socket.create_connection(("127.0.0.1", gw.port))
        try:  # the (n+1)-th is closed without a reply
            try:
                extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            except OSError:
                pass
            extra.settimeout(5)
            try:
                assert extra.recv(65536) == b""
            except ConnectionResetError:
                pass
        finally:
            extra.close()
        assert metric(gw, f'sandgate_connections_refused_total{{reason="{reason}"}}') == 1
        for s in held:  # the ones inside the cap go on working
            assert healthz(s) == 200
        held.pop(0).close()  # a closed connection frees its place

        def served():
            try:
                with socket.create_connection(("127.0.0.1", gw.port)) as s:
                    return healthz(s) == 200
            except (OSError, AssertionError):
                return False
        assert wait_for(served, timeout=10)
        assert wait_for(lambda: open_connections(gw) == n - 1, timeout=10)
    finally:
        for s in held:
            s.close()


def test_the_per_address_cap_refuses_the_next_connection(tmp_path):
    gw = start_gateway(tmp_path, "limits:\n  max_connections_per_address: 3\n")
    try:
        check_cap(gw, 3, "per_address")
        assert any("max_connections_per_address" in l["msg"] for l in gw.log_lines())
    finally:
        gw.assert_clean_exit(gw.stop())


def test_the_total_cap_refuses_the_next_connection(tmp_path):
    gw = start_gateway(tmp_path, "limits:\n  max_connections: 4\n"
                                 "  max_connections_per_address: 0\n")
    try:
        check_cap(gw, 4, "total")
    finally:
        gw.assert_clean_exit(gw.stop())


# --- out of descriptors -------------------------------------------------------

NOFILE = 48


def low_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def accept_lines(gw):
    """Lines about failed accepts: ours, or libevent's own warning."""
    return [l for l in gw.log_text().splitlines()
            if "accept failed" in l or "Error from accept" in l]


def test_out_of_descriptors_pauses_accepting_quietly_and_recovers(tmp_path):
    gw = start_gateway(tmp_path, "sandbox:\n  enabled: false\nlimits:\n"
                                 "  max_connections: 10000\n  max_connections_per_address: 0\n",
                       popen={"preexec_fn": low_nofile})
    held = []
    try:
        # Open connections until the gateway can take no more: accept fails
        # with EMFILE and the last one waits in the kernel's backlog.
        for _ in range(NOFILE + 10):
            s = socket.create_connection(("127.0.0.1", gw.port))
            held.append(s)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(1.0)
            try:
                if s.recv(65536).startswith(b"HTTP/1.1 200"):
                    continue
            except (socket.timeout, ConnectionResetError):
                pass
            break
        else:
            raise AssertionError("the gateway never ran out of descriptors")
        lines_then, size_then = len(accept_lines(gw)), os.path.getsize(gw.log_path)
        time.sleep(2)  # the gateway keeps trying to accept all along
        lines = accept_lines(gw)
        assert 1 <= len(lines) <= 3, lines[:5]
        assert len(lines) - lines_then <= 1
        assert os.path.getsize(gw.log_path) - size_then < 4096
        assert "ulimit -n" in lines[0]
        for s in held:
            s.close()
        held = []

        def served():
            try:
                with socket.create_connection(("127.0.0.1", gw.port), timeout=2) as s:
                    return healthz(s) == 200
            except (OSError, AssertionError):
                return False
        assert wait_for(served, timeout=10), "the gateway did not accept again"
        assert metric(gw, "sandgate_accept_paused_total") >= 1
    finally:
        for s in held:
            s.close()
        gw.assert_clean_exit(gw.stop())


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


# --- requests without a key ----------------------------------------------------

UNAUTH = ("limits:\n  unauthenticated_rate: 1/m\n  unauthenticated_burst: 5\n"
          "  unauthenticated_audit_every: 1m\n")


def call_from(gw, source, key=None):
    """One governed call from source address `source` (another loopback address)."""
    with socket.create_connection(("127.0.0.1", gw.port), source_address=(source, 0)) as s:
        s.sendall(head(key, b"Content-Length: %d\r\nConnection: close\r\n" % len(BODY)) + BODY)
        status, headers, body = read_reply(s)
        return status, headers, json.loads(body)


def unauthenticated_rows(gw):
    con = sqlite3.connect(os.path.join(gw.data_dir, "sandgate.db"), timeout=5)
    try:
        return con.execute("SELECT reason FROM decisions WHERE decision = 'unauthenticated'"
                           ).fetchall()
    finally:
        con.close()


def test_a_flood_without_keys_is_limited_per_address_counted_and_sampled(tmp_path):
    gw = start_gateway(tmp_path, UNAUTH)
    try:
        flood = [call_from(gw, "127.0.0.1") for _ in range(30)]
        codes = [body["code"] for _, _, body in flood]
        # The burst of 5 reaches identify; after that the address is refused before it.
        assert codes == ["key_missing"] * 5 + ["unauthenticated_limited"] * 25, codes
        status, headers, body = flood[-1]
        assert status == 429 and headers["content-type"] == "application/problem+json"
        assert 1 <= int(headers["retry-after"]) <= 60, headers
        assert "127.0.0.1" in body["detail"]
        # Limited means not checked: a good key from that address waits too.
        assert call_from(gw, "127.0.0.1", key=gw.key)[2]["code"] == "unauthenticated_limited"
        # Another address is not held to this one's failures.
        assert call_from(gw, "127.0.0.2")[2]["code"] == "key_missing"
        assert call_from(gw, "127.0.0.2", key=gw.key)[0] == 200
        # Every refusal is counted; the audit has one row per address per minute.
        assert metric(gw, 'sandgate_unauthenticated_total{result="refused"}') == 6
        assert metric(gw, 'sandgate_unauthenticated_total{result="limited"}') == 26
        assert wait_for(lambda: len(unauthenticated_rows(gw)) >= 2, timeout=10)
        gw.stop()  # the writer flushes everything it was given
        rows = unauthenticated_rows(gw)
        assert len(rows) == 2, rows
        assert {"127.0.0.1", "127.0.0.2"} == {
            re.search(r"client (\S+);", r[0]).group(1) for r in rows}, rows
    finally:
        gw.assert_clean_exit(gw.stop())

