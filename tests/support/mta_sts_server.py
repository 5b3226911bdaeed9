"""An HTTPS MTA-STS policy server on loopback (RFC 8461 §3.3): serves one policy text at
/.well-known/mta-sts.txt as text/plain, with the certificate it is given, and counts requests."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.network import free_port

POLICY_PATH = "/.well-known/mta-sts.txt"


class MtaStsServer:
    def __init__(self, tls_context: ssl.SSLContext, policy: str, host: str = "127.0.0.1") -> None:
        self.policy = policy
        self.requests: list[tuple[str, str]] = []  # (Host header, path)
        self.port = free_port(host)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.headers.get("Host", ""), self.path))
                body = server.policy.encode() if self.path == POLICY_PATH else b"not found\n"
                self.send_response(200 if self.path == POLICY_PATH else 404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer((host, self.port), Handler)
        self._httpd.socket = tls_context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> MtaStsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
