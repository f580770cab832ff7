"""The one HTTP client that fetches anything a link names: pages (for yt-dlp) and media.

Each hop of a redirect chain is checked afresh: http/https only, no credentials in the URL, the
host resolved once and its address allowed (addresses.py), and the socket connected to exactly
that address (TLS still verifies the certificate for the host name). No cookies are stored or
sent, no proxy is used, and the body is never decompressed (`Accept-Encoding: identity`).

A read that waits longer than `stall_seconds` raises Stalled; any read after `deadline`
(a time.monotonic() value) raises TookTooLong.
"""

import hashlib
import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from . import addresses
from .errors import (
    ConnectionFailed,
    CredentialsInUrl,
    HttpError,
    NotAUrl,
    Stalled,
    TookTooLong,
    TooLarge,
    TooManyRedirects,
    UnsupportedScheme,
)

REDIRECTS = {301, 302, 303, 307, 308}
DROPPED_HEADERS = {"cookie", "authorization", "proxy-authorization", "host", "accept-encoding", "connection"}
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Policy:
    allow_private: bool = False
    connect_timeout: float = 10.0
    stall_seconds: float = 30.0
    deadline: float | None = None  # time.monotonic() after which every read fails
    max_redirects: int = 10

    def read_timeout(self):
        if self.deadline is None:
            return self.stall_seconds
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TookTooLong()
        return min(self.stall_seconds, left)


def check_url(url):
    """Parse `url` and refuse what may never be fetched; returns the urlsplit result."""
    if not isinstance(url, str) or not url.strip() or any(c.isspace() for c in url.strip()):
        raise NotAUrl()
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise NotAUrl() from exc
    if not parts.scheme:
        raise NotAUrl()
    if parts.scheme.lower() not in ("http", "https"):
        raise UnsupportedScheme()
    if not parts.netloc:
        raise NotAUrl()
    if parts.username is not None or parts.password is not None:
        raise CredentialsInUrl()
    if not parts.hostname:
        raise NotAUrl()
    if port == 0:
        raise NotAUrl()
    return parts


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, *, address, policy):
        super().__init__(host, port, timeout=policy.connect_timeout)
        self._address, self._policy = address, policy

    def _open_socket(self):
        sock = socket.create_connection((self._address, self.port), self._policy.connect_timeout)
        peer = sock.getpeername()[0]
        if not addresses.is_allowed(peer, allow_private=self._policy.allow_private):
            sock.close()
            raise addresses.BlockedAddress()
        return sock

    def connect(self):
        self.sock = self._open_socket()


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, *, address, policy):
        super().__init__(host, port, timeout=policy.connect_timeout, context=ssl.create_default_context())
        self._address, self._policy = address, policy

    _open_socket = _PinnedHTTPConnection._open_socket

    def connect(self):
        self.sock = self._context.wrap_socket(self._open_socket(), server_hostname=self.host)


class Response:
    """An answer whose reads are bounded by the policy's stall time and deadline."""

    def __init__(self, conn, raw, url, policy):
        self._conn, self._raw, self.url, self._policy = conn, raw, url, policy
        self.status, self.reason = raw.status, raw.reason
        self.headers = raw.headers

    @property
    def declared_length(self):
        try:
            value = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return None
        return value if value >= 0 else None

    def read(self, amount=None):
        if amount is None or amount < 0:
            return b"".join(iter(lambda: self.read(CHUNK), b""))
        timeout = self._policy.read_timeout()
        if self._conn.sock is not None:
            self._conn.sock.settimeout(timeout)
        try:
            # read1: what has arrived (at most `amount`), so the deadline is checked between
            # small reads; read() would wait for the whole amount from a slow trickle.
            return self._raw.read1(amount)
        except TimeoutError as exc:
            raise (TookTooLong() if self._deadline_passed() else Stalled()) from exc
        except http.client.IncompleteRead as exc:
            raise ConnectionFailed("The site closed the connection before the whole video arrived.") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise ConnectionFailed() from exc

    def _deadline_passed(self):
        return self._policy.deadline is not None and time.monotonic() >= self._policy.deadline

    def close(self):
        self._raw.close()
        self._conn.close()


def _request_once(url, method, headers, data, policy):
    parts = check_url(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    try:
        host = parts.hostname.encode("idna").decode("ascii")  # bücher.example: xn--bcher-kva.example
    except UnicodeError as exc:
        raise NotAUrl() from exc
    address = addresses.checked_address(host, port, allow_private=policy.allow_private)
    cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    conn = cls(host, port, address=address, policy=policy)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    sent = {k: v for k, v in (headers or {}).items() if k.lower() not in DROPPED_HEADERS}
    sent["Accept-Encoding"] = "identity"
    try:
        conn.request(method, path, body=data, headers=sent)
        conn.sock.settimeout(policy.read_timeout())
        raw = conn.getresponse()
    except addresses.BlockedAddress:
        conn.close()
        raise
    except TimeoutError as exc:
        conn.close()
        raise Stalled("The site did not answer in time. Try again later.") from exc
    except ssl.SSLCertVerificationError as exc:
        conn.close()
        raise ConnectionFailed(
            "The site's secure connection could not be verified (its HTTPS certificate is not valid "
            "for this address), so nothing was fetched."
        ) from exc
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise ConnectionFailed() from exc
    return Response(conn, raw, url, policy)


def open_url(url, *, policy, method="GET", headers=None, data=None):
    """Send a request, following redirects hop by hop (each checked); returns the final Response.
    HTTP errors are returned too, with their status: the caller decides."""
    for _ in range(policy.max_redirects + 1):
        response = _request_once(url, method, headers, data, policy)
        location = response.headers.get("Location")
        if response.status not in REDIRECTS or not location:
            return response
        response.close()
        url = urljoin(url, location.strip())
        if response.status == 303 or (response.status in (301, 302) and method == "POST"):
            method, data = "GET", None
    raise TooManyRedirects()


def download(url, destination, *, policy, max_bytes, headers=None, progress=None, too_large_message=""):
    """Stream `url` into the open binary file `destination`, never more than `max_bytes`.

    Returns (final URL, bytes written, SHA-256 hex, Content-Type). The declared length only
    refuses early; the count of bytes actually received is what stops a download.
    `progress(received, declared_or_None)` is called after each chunk.
    """
    response = open_url(url, policy=policy, headers=headers)
    try:
        if response.status >= 400:
            raise HttpError(response.status)
        declared = response.declared_length
        if declared is not None and declared > max_bytes:
            raise TooLarge(too_large_message)
        digest, received = hashlib.sha256(), 0
        while chunk := response.read(CHUNK):
            received += len(chunk)
            if received > max_bytes:
                raise TooLarge(too_large_message)
            digest.update(chunk)
            destination.write(chunk)
            if progress is not None:
                progress(received, declared)
        return response.url, received, digest.hexdigest(), response.headers.get("Content-Type", "")
    finally:
        response.close()
