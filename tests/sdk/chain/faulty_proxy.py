"""A real HTTP proxy in front of a real node that can misbehave on request.

Faults it injects (per JSON-RPC method or for any method):
- ``fail(n, status)``: answer the next ``n`` matching requests with an HTTP error;
- ``drop_after_forward(method)``: forward the next matching request to the node, then
  close the connection without answering (the node acted, the client never hears);
- ``stop()`` / ``start()``: the port refuses connections, as when the node is down.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class FaultyProxy:
    """Forwards JSON-RPC POSTs from ``127.0.0.1:<port>`` to ``upstream``."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.seen: Counter[str] = Counter()
        self._faults: list[tuple[str | None, str, int]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, n: int, *, status: int = 503, method: str | None = None) -> None:
        with self._lock:
            self._faults += [(method, "status", status)] * n

    def drop_after_forward(self, method: str) -> None:
        with self._lock:
            self._faults.append((method, "drop", 0))

    def _take_fault(self, method: str) -> tuple[str, int] | None:
        with self._lock:
            for i, (wanted, kind, status) in enumerate(self._faults):
                if wanted is None or wanted == method:
                    del self._faults[i]
                    return kind, status
        return None

    def _forward(self, body: bytes) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
        try:
            conn.request("POST", "/", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def start(self) -> FaultyProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    method = str(json.loads(body).get("method"))
                except (ValueError, AttributeError):
                    method = "?"
                proxy.seen[method] += 1
                fault = proxy._take_fault(method)
                if fault and fault[0] == "status":
                    self.send_response(fault[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status, payload = proxy._forward(body)
                if fault and fault[0] == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: clients now get 'connection refused' on this port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
