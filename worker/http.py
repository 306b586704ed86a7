"""/healthz (the loop's heartbeat is recent), /readyz (model loaded, Redis reachable), /metrics."""

from __future__ import annotations

import errno
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)
Check = Callable[[], tuple[bool, dict[str, object]]]


class PortInUse(OSError):
    """The HTTP port is taken (another worker on this host, or anything else): a configuration error at start."""


class HealthServer:
    def __init__(self, host: str, port: int, healthz: Check, readyz: Check, registry: CollectorRegistry):
        checks = {"/healthz": healthz, "/readyz": readyz}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                    return
                check = checks.get(self.path)
                if check is None:
                    self._send(404, b'{"error": "not found"}', "application/json")
                    return
                ok, detail = check()
                self._send(200 if ok else 503, json.dumps({"ok": ok, **detail}).encode(), "application/json")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("http: " + format, *args)

        try:
            self.server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortInUse(
                exc.errno,
                f"HTTP port {port} on {host} is already in use; choose another with NPC_WORKER_HTTP_PORT or "
                "--http-port (0 disables /healthz, /readyz and /metrics)",
            ) from exc
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        log.info("health and metrics on http://%s:%d", *self.server.server_address[:2])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
