"""Guarded http(s) download of a base image: checked addresses, no DNS rebinding, bounded size and time.

The host name is resolved once, every address it resolves to is checked (worker.fetch.netguard), and the
connection goes to the checked address itself, with the name only in the Host header and, for https, in
SNI and certificate verification: a second, different DNS answer can never be used. Redirects are followed
by hand, each hop checked the same way. Environment proxies are not used.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import HTTPError, SSLError

from npc_video_client.contract import ErrorCode
from npc_video_client.errors import JobError
from npc_video_client.messages import quote
from worker.fetch.netguard import IPAddress, refusal
from worker.settings import Settings

MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 64 * 1024
SHOWN_URL_CHARS = 200
HEADERS = {"User-Agent": "npc-video-worker", "Accept": "image/*", "Accept-Encoding": "identity"}
PRIVATE_HINT = "; set NPC_WORKER_ALLOW_PRIVATE_NETWORKS=true to fetch from private networks (on-prem asset servers)"


class Refused(Exception):
    """One rule a URL broke; turned into invalid_image with the job's URL in fetch_http."""


class Deadline:
    """The whole fetch (every hop, lookup, connect and read) shares one time budget."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.at = time.monotonic() + budget_s

    def remaining(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise self.exceeded()
        return left

    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def exceeded(self) -> Refused:
        return Refused(f"the download took longer than {self.budget_s:g} s (NPC_WORKER_FETCH_TIMEOUT_S)")


@dataclass(frozen=True)
class Target:
    """One hop: where to connect (checked addresses, in resolver order) and what to ask for (host and path)."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[IPAddress, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == (443 if self.scheme == "https" else 80) else f"{host}:{self.port}"


def shown(url: str) -> str:
    return url if len(url) <= SHOWN_URL_CHARS else url[:SHOWN_URL_CHARS] + "..."


def fetch_http(url: str, settings: Settings) -> bytes:
    """The body of `url` (following up to 3 redirects), or invalid_image naming the URL and the rule broken."""
    deadline = Deadline(settings.fetch_timeout_s)
    current = url
    try:
        for hop in range(MAX_REDIRECTS + 1):
            try:
                target = resolve_target(current, settings, deadline)
                location = _download(target, settings.max_image_bytes, deadline)
            except Refused as exc:
                where = f" (redirect {hop} to {shown(current)})" if hop else ""
                raise Refused(f"{exc}{where}") from exc
            if isinstance(location, bytes):
                return location
            current = urljoin(current, location)
        raise Refused(f"it redirects more than {MAX_REDIRECTS} times")
    except Refused as exc:
        raise JobError(ErrorCode.INVALID_IMAGE, f"npc_base_image {shown(url)} was refused: {exc}") from exc


def resolve_target(url: str, settings: Settings, deadline: Deadline) -> Target:
    """Parse `url`, apply the host allowlist, resolve the host once and check every address it has."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused(f"scheme {quote(scheme) if scheme else 'none'} is not fetched; use http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise Refused("credentials in the URL are not accepted")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError) as exc:
        raise Refused(f"the host or port is malformed: {exc}") from exc
    if not host:
        raise Refused("the URL has no host")
    if not host_allowed(host, settings.fetch_allowed_hosts):
        allowed = ", ".join(settings.fetch_allowed_hosts)
        raise Refused(f"host {quote(host)} is not in NPC_WORKER_FETCH_ALLOWED_HOSTS ({allowed})")
    addresses = lookup(host, port, deadline)
    for address in addresses:
        reason = refusal(address, allow_private=settings.allow_private_networks)
        if reason is not None:
            hint = PRIVATE_HINT if refusal(address, allow_private=True) is None else ""
            raise Refused(
                f"host {quote(host)} resolves to {address}, which is {reason}; only globally routable addresses are "
                f"fetched{hint}"
            )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme=scheme, host=host, port=port, path=path, addresses=tuple(addresses))


def host_allowed(host: str, allowed: list[str]) -> bool:
    """An empty allowlist allows every host; `*.example.com` allows its subdomains, not example.com itself."""
    if not allowed:
        return True
    return any(host == entry or (entry.startswith("*.") and host.endswith(entry[1:])) for entry in allowed)


def lookup(host: str, port: int, deadline: Deadline) -> list[IPAddress]:
    """All addresses of `host`; getaddrinfo cannot be interrupted, so it runs in a thread the deadline abandons."""
    answers: list[list[IPAddress] | OSError] = []

    def resolve() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            answers.append(list(dict.fromkeys(ip_address(info[4][0]) for info in infos)))
        except OSError as exc:
            answers.append(exc)

    thread = threading.Thread(target=resolve, name=f"resolve {host}", daemon=True)
    thread.start()
    thread.join(deadline.remaining())
    if not answers:
        raise Refused(f"resolving {quote(host)} took longer than the fetch timeout")
    answer = answers[0]
    if isinstance(answer, OSError) or not answer:
        raise Refused(f"host {quote(host)} cannot be resolved: {answer or 'no addresses'}")
    return answer


def _pool(target: Target, address: IPAddress, deadline: Deadline) -> urllib3.HTTPConnectionPool:
    left = deadline.remaining()
    timeout = urllib3.Timeout(connect=left, read=left)
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            str(address),
            target.port,
            timeout=timeout,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    return urllib3.HTTPConnectionPool(str(address), target.port, timeout=timeout, retries=False)


def _download(target: Target, max_bytes: int, deadline: Deadline) -> bytes | str:
    """The body of a 200 response, or the Location of a redirect; the next address is tried if one is down."""
    failure = Refused(f"host {quote(target.host)} has no address")
    for address in target.addresses:
        with _pool(target, address, deadline) as pool:
            try:
                response = pool.urlopen(
                    "GET",
                    target.path,
                    headers={**HEADERS, "Host": target.host_header},
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    decode_content=False,
                    assert_same_host=False,
                )
            except SSLError as exc:
                raise Refused(f"the TLS certificate of {quote(target.host)} does not verify: {exc}") from exc
            except (HTTPError, OSError) as exc:
                if deadline.passed():
                    raise deadline.exceeded() from exc
                failure = Refused(f"connecting to {target.host_header} ({address}) failed: {exc}")
                continue
            try:
                return _body_or_location(response, max_bytes, deadline)
            finally:
                response.close()
    raise failure


def _body_or_location(response: urllib3.BaseHTTPResponse, max_bytes: int, deadline: Deadline) -> bytes | str:
    if response.status in REDIRECT_STATUSES:
        location = response.headers.get("Location")
        if not location:
            raise Refused(f"HTTP {response.status} redirect without a Location header")
        return location
    if response.status != 200:
        raise Refused(f"the server answered HTTP {response.status}")
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if not content_type.startswith("image/"):
        shown = quote(content_type) if content_type else "missing"
        raise Refused(f"Content-Type is {shown}; an image/* type is required")
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise Refused(f"Content-Encoding {quote(encoding)} is not accepted; serve the image file as is")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise Refused(f"it is {declared} bytes, over the limit of {max_bytes} (NPC_WORKER_MAX_IMAGE_BYTES)")
    return _read_capped(response, max_bytes, deadline)


def _read_capped(response: urllib3.BaseHTTPResponse, max_bytes: int, deadline: Deadline) -> bytes:
    """Stream the body, stopping at `max_bytes` and at the deadline even when the server sends a byte at a time."""
    body = bytearray()
    sock = getattr(response.connection, "sock", None)
    while True:
        left = deadline.remaining()
        if isinstance(sock, socket.socket):
            sock.settimeout(left)  # each read waits at most until the deadline
        try:
            chunk = response.read1(CHUNK_BYTES, decode_content=False)
        except (HTTPError, OSError) as exc:
            if deadline.passed():
                raise deadline.exceeded() from exc
            raise Refused(f"reading the body failed: {exc}") from exc
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > max_bytes:
            raise Refused(f"it is larger than the limit of {max_bytes} bytes (NPC_WORKER_MAX_IMAGE_BYTES)")
