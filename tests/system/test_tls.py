"""listen_tls: HTTPS next to the plain listener, TLS 1.2 and 1.3 only, mutual
TLS with a client CA, the certificate reloaded on SIGHUP, clear errors for bad
files at start, the transport's deadlines and caps on TLS connections, and
the CLI's --url https://.  The test makes its own CA and certificates with
the openssl command in a temporary directory; everything talks to 127.0.0.1."""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest
import requests

from conftest import BIN, EXAMPLES, Gateway, free_port, fresh_key, metric, run_cli, wait_for

CONTACT = {"email": "ada@example.com", "name": "Ada Lovelace", "company": "Analytical Engines"}
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def openssl(cwd, *args):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d, name):
    openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}")
    return os.path.join(d, f"{name}.pem")


def make_leaf(d, ca, name, serial, ext):
    """A certificate issued by `ca` with the given serial (hex) and extensions."""
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(ext)
    openssl(d, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
    openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-set_serial", f"0x{serial}", "-days", "2", "-extfile", f"{name}.ext",
            "-out", f"{name}.pem")
    return os.path.join(d, f"{name}.pem"), os.path.join(d, f"{name}.key")


SERVER_EXT = "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
CLIENT_EXT = "extendedKeyUsage=clientAuth\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    p = {"dir": d, "ca": make_ca(d, "ca"), "other_ca": make_ca(d, "other")}
    p["cert"], p["key"] = make_leaf(d, "ca", "server1", "1001", SERVER_EXT)
    p["cert2"], p["key2"] = make_leaf(d, "ca", "server2", "2002", SERVER_EXT)
    p["client_cert"], p["client_key"] = make_leaf(d, "ca", "client", "3003", CLIENT_EXT)
    p["stranger_cert"], p["stranger_key"] = make_leaf(d, "other", "stranger", "4004", CLIENT_EXT)
    return p


def tls_config(address, cert, key, client_ca=None, extra=""):
    text = f"listen_tls:\n  address: {address}\n  cert: {cert}\n  key: {key}\n"
    if client_ca:
        text += f"  client_ca: {client_ca}\n"
    return text + extra


def start_tls_gateway(d, pki, client_ca=False, extra="", cert=None, key=None):
    """A gateway with the examples applied, its plain listener at gw.url and
    its TLS listener at gw.tls_url."""
    data = os.path.join(d, "data")
    os.makedirs(data, exist_ok=True)
    run_cli("apply", "-f", EXAMPLES, data_dir=data)
    tls_port = free_port()
    config = os.path.join(d, "sandgate.yaml")
    with open(config, "w") as f:
        f.write(tls_config(f"127.0.0.1:{tls_port}", cert or pki["cert"], key or pki["key"],
                           pki["ca"] if client_ca else None, extra))
    gw = Gateway(data, config=config)
    gw.tls_port = tls_port
    gw.tls_url = f"https://127.0.0.1:{tls_port}"
    return gw.start()


@pytest.fixture(scope="module")
def tls_gw(tmp_path_factory, pki):
    gw = start_tls_gateway(str(tmp_path_factory.mktemp("tlsgw")), pki)
    yield gw
    gw.assert_clean_exit(gw.stop())


def client_ctx(pki, cert=None, key=None):
    ctx = ssl.create_default_context(cafile=pki["ca"])
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def handshake(port, ctx):
    """The TLS version and the peer's certificate (as Python's ssl shows it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.version(), s.getpeercert()


def get_over(port, ctx):
    """GET /healthz on a fresh TLS connection: the raw answer, or the error."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(REQUEST)
                return s.recv(4096)
    except (ssl.SSLError, ConnectionError) as e:
        return e


def test_a_governed_call_over_https(tls_gw, pki):
    key = fresh_key(tls_gw, "admin", mode="sandbox")["key"]
    r = requests.post(f"{tls_gw.tls_url}/v1/connectors/crm/create_contact", json=CONTACT,
                      headers={"Authorization": "Bearer " + key}, verify=pki["ca"],
                      timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["id"]
    # The same call on the plain listener still works.
    r = tls_gw.post("crm", "create_contact", CONTACT, key=key)
    assert r.status_code == 200, r.text
    # An untrusted client refuses the gateway's certificate: the check is real.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{tls_gw.tls_url}/healthz", timeout=10)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # ssl.TLSVersion.TLSv1 and TLSv1_1
def test_only_tls_1_2_and_1_3_are_accepted(tls_gw, pki):
    assert handshake(tls_gw.tls_port, client_ctx(pki))[0] == "TLSv1.3"
    # Some OpenSSL builds will not offer TLS 1.0/1.1 at the default security
    # level; level 0 makes sure this client offers them, so that the refusal
    # below is the gateway's protocol_version alert, not the client's choice.
    old = client_ctx(pki)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    assert handshake(tls_gw.tls_port, old)[0] == "TLSv1.2"
    for top in (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1):
        old.maximum_version = top
        with pytest.raises(ssl.SSLError) as e:
            handshake(tls_gw.tls_port, old)
        # The client did offer it; the server answered with a protocol-version alert.
        assert "TLSV1_ALERT_PROTOCOL_VERSION" in str(e.value), e.value


def test_the_cli_speaks_https(tls_gw, pki):
    key = fresh_key(tls_gw, "admin", mode="sandbox")["key"]
    env = {k: v for k, v in os.environ.items() if k not in ("SANDGATE_KEY", "SANDGATE_CACERT")}
    args = [BIN, "run", "onboard-contact", "--url", tls_gw.tls_url, "--key", key, "--input", "-",
            "--json"]
    body = json.dumps({"email": "ada@example.com", "name": "Ada"})
    p = subprocess.run(args + ["--cacert", pki["ca"]], input=body, capture_output=True,
                       text=True, timeout=90, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["status"] == "succeeded"
    # The CA from the environment.
    p = subprocess.run(args, input=body, capture_output=True, text=True, timeout=90,
                       env=dict(env, SANDGATE_CACERT=pki["ca"]))
    assert p.returncode == 0, p.stdout + p.stderr
    # Without the CA the gateway's certificate is not trusted, and the CLI says so.
    p = subprocess.run(args, input=body, capture_output=True, text=True, timeout=90, env=env)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "cannot talk to the gateway at " + tls_gw.tls_url + " over TLS" in p.stderr, p.stderr
    assert "certificate is not trusted" in p.stderr and "--cacert" in p.stderr, p.stderr
    # A CA file that is not one is a usage error.
    p = subprocess.run(args + ["--cacert", pki["key"]], input=body, capture_output=True,
                       text=True, timeout=90, env=env)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "--cacert " + pki["key"] + " holds no CA certificate" in p.stderr, p.stderr


def test_mutual_tls_refuses_a_client_without_a_certificate(tmp_path, pki):
    gw = start_tls_gateway(str(tmp_path), pki, client_ca=True)
    try:
        member = client_ctx(pki, pki["client_cert"], pki["client_key"])
        ok = get_over(gw.tls_port, member)
        assert isinstance(ok, bytes) and ok.startswith(b"HTTP/1.1 200"), ok
        baseline = open_fds(gw)
        for _ in range(5):
            for ctx in (client_ctx(pki),
                        client_ctx(pki, pki["stranger_cert"], pki["stranger_key"])):
                got = get_over(gw.tls_port, ctx)
                # Refused in the handshake (TLS 1.2) or by an alert at the first read (1.3).
                assert not (isinstance(got, bytes) and got.startswith(b"HTTP/")), got
            assert get_over(gw.tls_port, member).startswith(b"HTTP/1.1 200")
        # Every refused or finished connection gave its descriptor back.
        assert wait_for(lambda: open_fds(gw) <= baseline, timeout=10), (open_fds(gw), baseline)
        # The plain listener is not affected.
        assert requests.get(gw.url + "/healthz", timeout=10).status_code == 200
    finally:
        gw.assert_clean_exit(gw.stop())


def healthz(conn):
    conn.request("GET", "/healthz")
    r = conn.getresponse()
    r.read()
    return r.status


def open_fds(gw):
    return len(os.listdir(f"/proc/{gw.proc.pid}/fd"))


def serial_seen(port, pki):
    return handshake(port, client_ctx(pki))[1]["serialNumber"]


def test_sighup_reloads_the_certificate_for_new_connections(tmp_path, pki):
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    shutil.copy(pki["cert"], cert)
    shutil.copy(pki["key"], key)
    gw = start_tls_gateway(str(tmp_path), pki, cert=cert, key=key)
    try:
        assert serial_seen(gw.tls_port, pki) == "1001"
        # A keep-alive connection opened before the reload.
        before = http.client.HTTPSConnection("127.0.0.1", gw.tls_port, timeout=10,
                                             context=client_ctx(pki))
        assert healthz(before) == 200
        # Replaced the way an operator would: new files renamed into place.
        shutil.copy(pki["cert2"], cert + ".new")
        shutil.copy(pki["key2"], key + ".new")
        os.replace(key + ".new", key)
        os.replace(cert + ".new", cert)
        gw.signal(signal.SIGHUP)
        assert wait_for(lambda: serial_seen(gw.tls_port, pki) == "2002", timeout=10)
        # The old connection keeps its session, and the plain listener serves on.
        assert healthz(before) == 200
        assert before.sock.getpeercert()["serialNumber"] == "1001"
        before.close()
        assert requests.get(gw.url + "/healthz", timeout=10).status_code == 200
        assert any("TLS certificate and key reloaded (serial 2002)" in l["msg"]
                   for l in gw.log_lines())
        # A key that does not match: the reload is refused and the old certificate stays.
        shutil.copy(pki["key"], key)
        gw.signal(signal.SIGHUP)
        assert wait_for(lambda: any("TLS certificate not reloaded" in l["msg"]
                                    for l in gw.log_lines()), timeout=10)
        line = next(l for l in gw.log_lines() if "TLS certificate not reloaded" in l["msg"])
        assert f"listen_tls.key {key} is not the key of the certificate" in line["msg"], line
        assert line["level"] == "error"
        assert serial_seen(gw.tls_port, pki) == "2002"
    finally:
        gw.assert_clean_exit(gw.stop())


def serve_with(tmp_path, text):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    return subprocess.run([BIN, "serve", "--config", str(config), "--data-dir", str(data),
                           "--listen", f"127.0.0.1:{free_port()}", "--admin-listen", "off"],
                          capture_output=True, text=True, timeout=60)


def test_bad_certificate_files_stop_the_start_with_a_clear_sentence(tmp_path, pki):
    addr = f"127.0.0.1:{free_port()}"
    p = serve_with(tmp_path, tls_config(addr, "/nonexistent/cert.pem", pki["key"]))
    assert p.returncode != 0
    assert ("listen_tls.cert /nonexistent/cert.pem cannot be read: No such file or directory; "
            "fix the path in sandgate.yaml") in p.stderr, p.stderr
    p = serve_with(tmp_path, tls_config(addr, pki["cert"], pki["key2"]))
    assert p.returncode != 0
    assert (f"listen_tls.key {pki['key2']} is not the key of the certificate in "
            f"listen_tls.cert {pki['cert']}") in p.stderr, p.stderr
    p = serve_with(tmp_path, tls_config(addr, pki["key"], pki["key"]))
    assert p.returncode != 0
    assert f"listen_tls.cert {pki['key']} holds no certificate sandgate can read" in p.stderr
    p = serve_with(tmp_path, tls_config(addr, pki["cert"], pki["key"], client_ca=pki["key"]))
    assert p.returncode != 0
    assert f"listen_tls.client_ca {pki['key']} holds no CA certificate" in p.stderr, p.stderr


def test_tls_connections_have_the_transport_deadlines_and_caps(tmp_path, pki):
    gw = start_tls_gateway(str(tmp_path), pki, extra=(
        "limits:\n  header_timeout: 1s\n  read_timeout: 30s\n"
        "  max_connections_per_address: 2\n"))
    try:
        # A connection that never starts its handshake is cut at the header deadline.
        with socket.create_connection(("127.0.0.1", gw.tls_port), timeout=10) as s:
            s.settimeout(10)  # far past 1 s + the 2 s linger
            assert s.recv(4096) == b""
        assert metric(gw, 'sandgate_request_timeouts_total{phase="head"}') == 1
        # TLS connections held open from one address: the cap (2) stops the third at the
        # latest (sooner if the harness's own plain connection is not closed yet).
        ctx = client_ctx(pki)
        held, refused = [], None
        for _ in range(3):
            raw = socket.create_connection(("127.0.0.1", gw.tls_port), timeout=10)
            try:
                s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
                s.sendall(REQUEST)
                got = s.recv(4096)
            except (ssl.SSLError, ConnectionError) as e:
                got = e
            if isinstance(got, bytes) and got.startswith(b"HTTP/1.1 200"):
                held.append(s)
                continue
            refused = got
            raw.close()
            break
        assert refused is not None and len(held) <= 2, (held, refused)
        assert metric(gw, 'sandgate_connections_refused_total{reason="per_address"}') == 1
        for s in held:
            s.close()
    finally:
        gw.assert_clean_exit(gw.stop())


def test_listen_tls_alone_serves_no_plain_http(tmp_path, pki):
    """listen_tls without a listen line: HTTPS only."""
    data = tmp_path / "data"
    data.mkdir()
    port, plain = free_port(), 8080
    config = tmp_path / "tls-only.yaml"
    config.write_text(tls_config(f"127.0.0.1:{port}", pki["cert"], pki["key"]))
    log = open(tmp_path / "gateway.log", "w")
    proc = subprocess.Popen([BIN, "serve", "--config", str(config), "--data-dir", str(data),
                             "--admin-listen", "off"], stdout=subprocess.PIPE, stderr=log)
    ctx = client_ctx(pki)

    def up():
        assert proc.poll() is None, (tmp_path / "gateway.log").read_text()
        got = get_over(port, ctx)
        return isinstance(got, bytes) and got.startswith(b"HTTP/1.1 200")

    try:
        assert wait_for(up, timeout=30), (tmp_path / "gateway.log").read_text()
        text = (tmp_path / "gateway.log").read_text()
        assert f"listening for TLS on 127.0.0.1:{port}" in text, text
        # The default plain address was not taken: nothing of ours listens there.
        assert f"listening on 127.0.0.1:{plain}" not in text, text
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        log.close()
    text = (tmp_path / "gateway.log").read_text()
    assert rc == 0 and "Sanitizer" not in text and "runtime error:" not in text, text
