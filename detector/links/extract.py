"""yt-dlp, for extraction only: which video a link names, its metadata and one format to fetch.

yt-dlp knows the video sites and is updated often (sites change: updating it is the one-line pin
in requirements.txt). It never downloads here, and every request it makes (the page, an API,
an embed) goes through GuardedRH, i.e. through client.py's address checks; no cookies, no
credentials, no proxies, no playlists. The media itself is fetched by client.download.
"""

import io
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import yt_dlp
from yt_dlp.networking.common import Features, RequestHandler, Response
from yt_dlp.networking.exceptions import HTTPError as YtHTTPError
from yt_dlp.networking.exceptions import TransportError

from ml_core.constants import VIDEO_TYPES

from . import client
from .errors import (
    HttpError,
    LinkError,
    LoginRequired,
    NoUsableFormat,
    NoVideo,
    PageTooLarge,
    Playlist,
    TooLarge,
    TooLong,
)

logger = logging.getLogger(__name__)

PAGE_MAX_BYTES = 8 * 1024 * 1024  # a web page or API answer yt-dlp reads; media never goes this way
MAX_PIXELS = 3840 * 2160  # formats above 4K would be refused by the probe anyway
DIRECT_PROTOCOLS = {"http", "https"}
PREFERRED_HEIGHT = 1080  # the best format up to this height is chosen when there is one

# Messages yt-dlp's extractors use for log-ins and private posts (lower case).
LOGIN_HINTS = ("login", "log in", "sign in", "private", "cookies", "authentication", "age-restricted")


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_seconds: int
    # The messages, for a size (None: unknown) and a duration; the defaults are generic.
    too_large_message: Callable[[int | None], str] = lambda size: TooLarge.message
    too_long_message: Callable[[float], str] = lambda seconds: TooLong.message


@dataclass(frozen=True)
class LinkInfo:
    media_url: str
    http_headers: dict
    extension: str  # ".mp4" etc., from the allow-list, or "" when the site did not say
    final_url: str
    site: str
    post_id: str
    title: str
    uploader: str
    duration: float | None
    filesize: int | None


@dataclass
class _Context:
    """What one extraction shares with its request handler (one per thread: yt-dlp builds
    handlers itself, passing only its own parameters)."""

    policy: client.Policy
    refusal: LinkError | None = None
    final_urls: list = field(default_factory=list)


_local = threading.local()


class _BoundedBody(io.RawIOBase):
    """A page body for yt-dlp: reads go through client.Response (stall, deadline) and stop with
    PageTooLarge past PAGE_MAX_BYTES."""

    def __init__(self, response, context):
        self._response, self._context, self._read = response, context, 0

    def readable(self):
        return True

    def read(self, amount=-1):
        if amount is None or amount < 0:
            return b"".join(iter(lambda: self.read(client.CHUNK), b""))
        try:
            data = self._response.read(amount)
            self._read += len(data)
            if self._read > PAGE_MAX_BYTES:
                raise PageTooLarge()
        except LinkError as exc:
            # yt-dlp wraps read errors in its own; the extraction reports this one.
            self._context.refusal = exc
            raise
        return data

    def close(self):
        self._response.close()
        super().close()


class GuardedRH(RequestHandler):
    """yt-dlp's only request handler while we extract: every request goes through client.py."""

    _SUPPORTED_URL_SCHEMES = ("http", "https")
    _SUPPORTED_PROXY_SCHEMES = None
    _SUPPORTED_FEATURES = (Features.ALL_PROXY, Features.NO_PROXY)

    def _check_extensions(self, extensions):
        for name in ("cookiejar", "timeout", "legacy_ssl", "keep_header_casing", "impersonate"):
            extensions.pop(name, None)

    def _send(self, request):
        context = _local.context
        headers = self._get_headers(request)
        data = request.data if isinstance(request.data, bytes | None) else b"".join(request.data)
        try:
            answer = client.open_url(
                request.url, policy=context.policy, method=request.method, headers=headers, data=data
            )
        except LinkError as exc:
            context.refusal = exc
            raise TransportError(cause=exc) from exc
        context.final_urls.append(answer.url)
        body = _BoundedBody(answer, context)
        response = Response(body, answer.url, dict(answer.headers.items()), answer.status, answer.reason)
        if answer.status >= 400:
            raise YtHTTPError(response)
        return response


class _GuardedYoutubeDL(yt_dlp.YoutubeDL):
    @property
    def _request_director(self):
        director = self.__dict__.get("_guarded_director")
        if director is None:
            director = self.__dict__["_guarded_director"] = self.build_request_director([GuardedRH])
        return director

    def close(self):
        director = self.__dict__.pop("_guarded_director", None)
        if director is not None:
            director.close()
        super().close()


class _QuietLogger:
    def debug(self, message):
        logger.debug("yt-dlp: %s", message)

    info = debug

    def warning(self, message):
        logger.info("yt-dlp: %s", message)

    def error(self, message):
        logger.info("yt-dlp: %s", message)


def _size(fmt):
    return fmt.get("filesize") or fmt.get("filesize_approx")


def _usable(fmt):
    if fmt.get("protocol", "https") not in DIRECT_PROTOCOLS or not fmt.get("url"):
        return False
    if fmt.get("vcodec") == "none":  # audio only
        return False
    width, height = fmt.get("width"), fmt.get("height")
    return not (width and height and width * height > MAX_PIXELS)


def _format_selector(limits, verdict):
    """yt-dlp's `format` as a function: the best directly downloadable format within the limits.
    yt-dlp sorts formats worst to best; `verdict` says why none was chosen."""

    def select(ctx):
        usable = [f for f in ctx["formats"] if _usable(f)]
        fitting = [f for f in usable if (_size(f) or 0) <= limits.max_bytes]
        if not usable:
            verdict["reason"] = NoUsableFormat()
        elif not fitting:
            verdict["reason"] = TooLarge(limits.too_large_message(min(_size(f) for f in usable)))
        else:
            # Faces are found as well at 1080p; a larger format costs time and may pass the limit.
            modest = [f for f in fitting if (f.get("height") or 0) <= PREFERRED_HEIGHT]
            yield (modest or fitting)[-1]

    return select


def _options(limits, verdict):
    return {
        "format": _format_selector(limits, verdict),
        "noplaylist": True,  # a video inside a playlist: that video only
        "extract_flat": "in_playlist",  # a playlist: never resolve its entries
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _QuietLogger(),
        "cachedir": False,
        "proxy": "",
        "usenetrc": False,
        "cookiefile": None,
        "enable_file_urls": False,
        "check_formats": False,
        "extractor_retries": 0,
        "socket_timeout": 30,
        "default_search": "error",
        "color": {"stdout": "never", "stderr": "never"},
    }


def _text(value, limit):
    return " ".join(str(value or "").split())[:limit]


def _extension(info):
    ext = f".{info.get('ext') or ''}".lower()
    return ext if ext in VIDEO_TYPES else ""


def _http_status(exc):
    """The HTTP status behind a yt-dlp error, if one is: its causes are chained or in exc_info."""
    seen, pending = set(), [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, YtHTTPError):
            return error.status
        info = getattr(error, "exc_info", None)
        pending += [getattr(error, "cause", None), error.__cause__, error.__context__]
        pending.append(info[1] if info else None)
    return None


def _translate(exc, context, verdict):
    """yt-dlp's error as one of ours: what our client refused, what the format choice found, the
    site's HTTP status, else words from the extractor's message."""
    if context.refusal is not None:
        return context.refusal
    if verdict.get("reason") is not None:
        return verdict["reason"]
    status = _http_status(exc)
    if status:
        return LoginRequired() if status in (401, 403) else HttpError(status)
    text = str(exc).lower()
    if any(hint in text for hint in LOGIN_HINTS):
        return LoginRequired()
    logger.info("link extraction failed: %s", exc)
    return NoVideo()


def extract(url, *, policy, limits):
    """Ask yt-dlp what `url` shows; return a LinkInfo or raise a LinkError."""
    client.check_url(url)
    context, verdict = _Context(policy), {}
    _local.context = context
    try:
        with _GuardedYoutubeDL(_options(limits, verdict)) as ydl:
            info = ydl.extract_info(url, download=False)
    except yt_dlp.utils.DownloadError as exc:
        raise _translate(exc, context, verdict) from exc
    finally:
        _local.context = None
    if context.refusal is not None:
        raise context.refusal
    if info.get("_type") in ("playlist", "multi_video"):
        raise Playlist()
    duration = info.get("duration")
    if duration and duration > limits.max_seconds:
        raise TooLong(limits.too_long_message(duration))
    chosen = (info.get("requested_formats") or [info])[0]
    if not chosen.get("url"):
        raise NoUsableFormat()
    size = _size(chosen)
    if size and size > limits.max_bytes:
        raise TooLarge(limits.too_large_message(size))
    return LinkInfo(
        media_url=chosen["url"],
        http_headers=dict(chosen.get("http_headers") or {}),
        extension=_extension(chosen),
        # The first request's final URL: the page after its redirects (yt-dlp reports the URL given).
        final_url=context.final_urls[0] if context.final_urls else info.get("webpage_url") or url,
        site=_text(info.get("extractor_key") or info.get("extractor"), 100),
        post_id=_text(info.get("id"), 200),
        title=_text(info.get("title"), 500),
        uploader=_text(info.get("uploader") or info.get("channel") or info.get("uploader_id"), 300),
        duration=float(duration) if duration else None,
        filesize=size,
    )
