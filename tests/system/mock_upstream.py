"""A scripted upstream API for the live-connector tests: an HTTP/1.1 server
on 127.0.0.1 in a thread of the test process, optionally over TLS.

Every request it receives is recorded (method, path, query, headers, body).
Answers come from `answer(req) -> (status, headers, body)`, which a test
replaces; the default echoes a JSON object.  `hold` makes it keep requests
waiting until released, to stand for a slow upstream."""

import http.server
import json
import ssl
import threading
import urllib.parse


class Upstream:
    def __init__(self, tls_cert=None, tls_key=None):
        self.requests = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.release.set()
        self.answer = lambda req: (200, {}, {"id": "it_1", "name": "default"})
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, as servers do

            def log_message(self, *args):
                pass

            def _serve(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                url = urllib.parse.urlsplit(self.path)
                req = {"method": self.command, "path": url.path, "raw_path": self.path,
                       "query": urllib.parse.parse_qs(url.query, keep_blank_values=True),
                       "headers": {k.lower(): v for k, v in self.headers.items()},
                       "header_list": [(k.lower(), v) for k, v in self.headers.items()],
                       "body": body}
                with outer.lock:
                    outer.requests.append(req)
                outer.release.wait(30)
                status, headers, payload = outer.answer(req)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                headers = dict(headers)
                headers.setdefault("Content-Type", "application/json")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 256  # many calls at once must never meet a full backlog

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls_cert, tls_key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def count(self):
        with self.lock:
            return len(self.requests)

    def last(self):
        with self.lock:
            return self.requests[-1]
