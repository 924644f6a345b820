"""The transport's own limits, over real sockets: framing, slow clients,
connection caps, descriptor exhaustion, the admin listener and floods of
requests without a key."""

import json
import socket
import time

from conftest import CONTACT_MIN

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
