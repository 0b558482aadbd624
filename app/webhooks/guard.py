"""The SSRF guard and the one HTTP client of webhooks: a receiver cannot turn our worker into a scanner.

- A URL is http(s) only, without credentials, at most 2,000 characters; https is required when
  WEBHOOK_REQUIRE_HTTPS is on (the default in production).
- Its host is resolved, and every address it resolves to must be public: loopback, private, link-local,
  shared (CGNAT), reserved, multicast and unspecified addresses are refused, IPv4-mapped IPv6 included.
  That check runs when the endpoint is registered and again before every attempt.
- The attempt connects to the address that was checked (the Host header and TLS SNI/certificate still name
  the host), so DNS rebinding cannot swap in another address between check and connect.
- No redirects (http.client never follows them; a 3xx is a failed attempt), a response body read up to
  WEBHOOK_MAX_RESPONSE_BYTES, a connect/read timeout and a total deadline that shuts the socket.
- WEBHOOK_ALLOWED_HOSTS (hostnames or IPs, comma-separated) bypasses the address check and the https rule:
  tests and development use it for a receiver on 127.0.0.1. It is empty by default, in every environment.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2000
Resolver = Callable[..., list]


class UnsafeURL(ValueError):
    """The URL is malformed, not allowed, or resolves to an address we refuse to call."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`ip`) and what to ask for (host, port, path)."""

    scheme: str
    host: str
    port: int
    path: str
    ip: str


@dataclass(frozen=True)
class Answer:
    """What one attempt got back. status_code is None when no HTTP answer came (refused, timeout...)."""

    status_code: int | None
    elapsed_ms: int
    excerpt: str
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _split(url: str, allowed: frozenset[str], require_https: bool) -> tuple[str, str, int, str]:
    url = (url or "").strip()
    if not url:
        raise UnsafeURL("Enter the endpoint's URL.")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise UnsafeURL("The URL must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeURL("That is not a valid URL.") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower().rstrip(".")
    if scheme not in ("http", "https"):
        raise UnsafeURL("The URL must start with https:// (or http:// for an allow-listed host).")
    if not host:
        raise UnsafeURL("The URL has no host name.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("Put no user name or password in the URL; verify our signature instead.")
    if scheme != "https" and require_https and host not in allowed:
        raise UnsafeURL("The URL must use https://.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port or (443 if scheme == "https" else 80), path


def refused_reason(address: str) -> str | None:
    """Why we refuse to connect to this address, or None if it is a public one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:  # shared (CGNAT), documentation, benchmarking ranges...
        return "reserved"
    return None


def check(url: str, *, allowed_hosts: frozenset[str] = frozenset(), require_https: bool = True,
          resolver: Resolver = socket.getaddrinfo) -> Target:
    """Parse and resolve `url`; raise UnsafeURL unless every address it resolves to may be called.

    Returns the target pinned to the first resolved address, which is the one the attempt connects to.
    """
    scheme, host, port, path = _split(url, allowed_hosts, require_https)
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise UnsafeURL(f"The host {host} could not be resolved.") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise UnsafeURL(f"The host {host} could not be resolved.")
    if host not in allowed_hosts:
        for address in addresses:
            reason = refused_reason(address)
            if reason:
                raise UnsafeURL(f"The host {host} resolves to a {reason} address ({address}); "
                                "webhooks only call public addresses.")
    return Target(scheme, host, port, path, addresses[0])


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the checked IP; the Host header still names the host."""

    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._ip = target.ip
        self.opened: socket.socket | None = None  # kept after http.client lets go of it (see _shut)

    def connect(self) -> None:
        self.sock = self.opened = socket.create_connection((self._ip, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """Connects to the checked IP; SNI and certificate verification use the host name."""

    def __init__(self, target: Target, timeout: float, context: ssl.SSLContext):
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._ip = target.ip
        self._tls = context
        self.opened: socket.socket | None = None  # as in _PinnedHTTP

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self.opened = self._tls.wrap_socket(sock, server_hostname=self.host)


def post(target: Target, body: bytes, headers: dict[str, str], *, timeout: float, deadline: float,
         max_bytes: int, excerpt_chars: int = 500) -> Answer:
    """POST `body` to the checked target. Never raises: failures come back as Answer.error.

    `timeout` bounds connecting and each read; `deadline` (seconds) bounds the whole exchange: a receiver
    that drips its answer byte by byte has its socket shut at the deadline.
    """
    started = time.monotonic()
    if target.scheme == "https":
        conn: _PinnedHTTP | _PinnedHTTPS = _PinnedHTTPS(target, timeout, ssl.create_default_context())
    else:
        conn = _PinnedHTTP(target, timeout)
    timer = threading.Timer(deadline, _shut, args=(conn,))
    timer.daemon = True
    timer.start()
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read(max_bytes)
        status = response.status
        elapsed = int((time.monotonic() - started) * 1000)
        return Answer(status, elapsed, data.decode("utf-8", "replace")[:excerpt_chars], None)
    except (OSError, http.client.HTTPException) as exc:
        elapsed = int((time.monotonic() - started) * 1000)
        if time.monotonic() - started >= deadline:
            return Answer(None, elapsed, "", f"No complete answer within {deadline:g} s.")
        return Answer(None, elapsed, "", _describe(exc))
    finally:
        timer.cancel()
        conn.close()


def _shut(conn: _PinnedHTTP | _PinnedHTTPS) -> None:
    # Not conn.sock: http.client drops it once a response says it will close the connection (HTTP/1.0,
    # `Connection: close`), and the body is then read from the same socket with no deadline but ours.
    sock = conn.opened
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked read, as the LLM watchdog does
        except OSError:
            pass


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "Timed out waiting for the endpoint."
    if isinstance(exc, ConnectionRefusedError):
        return "Connection refused."
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]
