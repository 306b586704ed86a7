"""A real HTTP(S) server on 127.0.0.1 for fetch tests: scripted routes, including misbehaving ones.

Each route says what to answer (status, headers, body) and how badly (stall before answering, drip the
body a byte at a time, omit Content-Length). Every request is recorded with its Host header.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Route:
    body: bytes = b""
    content_type: str | None = "image/png"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    send_length: bool = True
    stall_s: float = 0.0  # wait before the status line
    drip_s: float = 0.0  # wait between single bytes of the body


@dataclass
class Seen:
    path: str
    host: str
    at: float = field(default_factory=time.time)  # unix seconds: when the request arrived


class ImageServer:
    def __init__(self) -> None:
        self.scheme = "http"
        self.port = 0
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"


def _handler(images: ImageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            images.requests.append(Seen(self.path, self.headers.get("Host", "")))
            route = images.routes.get(self.path.split("?")[0], Route(status=404, content_type="text/plain"))
            time.sleep(route.stall_s)
            try:
                self.send_response(route.status)
                if route.content_type:
                    self.send_header("Content-Type", route.content_type)
                if route.send_length:
                    self.send_header("Content-Length", str(len(route.body)))
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if not route.drip_s:
                    self.wfile.write(route.body)
                    return
                for index in range(len(route.body)):
                    self.wfile.write(route.body[index : index + 1])
                    self.wfile.flush()
                    time.sleep(route.drip_s)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                return  # the client gave up, as it should

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


@contextmanager
def serve_images(certificate: tuple[Path, Path] | None = None) -> Iterator[ImageServer]:
    """An ImageServer on a free loopback port; https when a (certificate, key) pair is given."""
    images = ImageServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(images))
    httpd.daemon_threads = True
    if certificate is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        images.scheme = "https"
    images.port = int(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), name="image-server", daemon=True)
    thread.start()
    try:
        yield images
    finally:
        httpd.shutdown()
        httpd.server_close()
