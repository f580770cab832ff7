"""The guarded HTTP client against a local server: redirects checked hop by hop, the connection
pinned to the checked address, sizes enforced on the bytes received, stalls and deadlines."""

import io
import time

import pytest

from detector.links import addresses, client
from detector.links.errors import (
    BlockedAddress,
    CredentialsInUrl,
    HttpError,
    NotAUrl,
    Stalled,
    TookTooLong,
    TooLarge,
    TooManyRedirects,
    UnsupportedScheme,
)

OPEN = client.Policy(allow_private=True, stall_seconds=2)
CLOSED = client.Policy(allow_private=False, stall_seconds=2)


def fetch(url, policy=OPEN, max_bytes=10**6):
    out = io.BytesIO()
    final, size, sha256, content_type = client.download(url, out, policy=policy, max_bytes=max_bytes)
    return final, out.getvalue(), sha256


@pytest.fixture
def loopback_is_public(monkeypatch):
    """Treat 127.0.0.1 as a public address, so the test server can play an allowed site while
    the setting stays off; everything else is judged for real."""
    real = addresses.is_allowed

    def is_allowed(address, *, allow_private=False):
        return str(address) == "127.0.0.1" or real(address, allow_private=allow_private)

    monkeypatch.setattr(addresses, "is_allowed", is_allowed)


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("", NotAUrl),
        ("not a url", NotAUrl),
        ("example.com/video.mp4", NotAUrl),
        ("ftp://example.com/video.mp4", UnsupportedScheme),
        ("file:///etc/passwd", UnsupportedScheme),
        ("javascript:alert(1)", UnsupportedScheme),
        ("https://user:secret@example.com/v.mp4", CredentialsInUrl),
        ("http://example.com:99999/", NotAUrl),
    ],
)
def test_it_refuses_what_is_not_an_http_url(url, error):
    with pytest.raises(error):
        client.check_url(url)


def test_it_downloads_a_file_and_hashes_what_it_received(server):
    server.file("/clip.mp4", b"x" * 5000)
    final, data, sha256 = fetch(server.url("/clip.mp4"))
    assert data == b"x" * 5000 and final == server.url("/clip.mp4")
    import hashlib

    assert sha256 == hashlib.sha256(data).hexdigest()


def test_it_follows_a_redirect_chain_and_reports_the_final_address(server):
    server.file("/final.mp4", b"video")
    server.redirect("/a", "/b", 301)
    server.redirect("/b", server.url("/c"), 307)
    server.redirect("/c", "/final.mp4", 303)
    final, data, _ = fetch(server.url("/a"))
    assert (final, data) == (server.url("/final.mp4"), b"video")
    assert server.paths() == ["/a", "/b", "/c", "/final.mp4"]


def test_a_redirect_loop_is_stopped(server):
    server.redirect("/a", "/b")
    server.redirect("/b", "/a")
    with pytest.raises(TooManyRedirects):
        fetch(server.url("/a"))
    assert len(server.requests) == OPEN.max_redirects + 1


def test_a_redirect_to_another_scheme_is_refused(server):
    server.redirect("/a", "file:///etc/passwd")
    with pytest.raises(UnsupportedScheme):
        fetch(server.url("/a"))


def test_with_the_setting_off_loopback_is_refused_before_connecting(server):
    server.file("/clip.mp4", b"video")
    with pytest.raises(BlockedAddress):
        fetch(server.url("/clip.mp4"), policy=CLOSED)
    with pytest.raises(BlockedAddress):
        fetch(f"http://localhost:{server.port}/clip.mp4", policy=CLOSED)
    assert server.requests == []


@pytest.mark.usefixtures("loopback_is_public")
def test_a_redirect_from_an_allowed_host_to_a_private_one_is_refused(server, monkeypatch):
    server.redirect("/meta", "http://169.254.169.254/latest/meta-data/")
    server.redirect("/intranet", "http://wiki.corp.example/")
    monkeypatch.setattr(addresses, "resolve", lambda host, port: ["10.20.30.40"])
    for path in ("/meta", "/intranet"):
        with pytest.raises(BlockedAddress):
            fetch(server.url(path), policy=CLOSED)
    assert server.paths() == ["/meta", "/intranet"]  # the private targets were never contacted


def test_the_connection_goes_to_the_checked_address_even_if_dns_changes_its_answer(server, monkeypatch):
    # DNS rebinding: the first answer passes the check, later answers point inside.
    answers = iter([["127.0.0.1"]])
    monkeypatch.setattr(addresses, "resolve", lambda host, port: next(answers, ["10.0.0.99"]))
    server.file("/clip.mp4", b"video")
    final, data, _ = fetch(f"http://video.example:{server.port}/clip.mp4")
    assert data == b"video"
    assert server.requests[0][1]["Host"] == f"video.example:{server.port}"  # the name, not the IP


def test_no_cookie_or_credentials_are_sent(server):
    server.file("/clip.mp4", b"video")
    out = io.BytesIO()
    headers = {"Cookie": "session=1", "Authorization": "Basic eDp5", "User-Agent": "test"}
    client.download(server.url("/clip.mp4"), out, policy=OPEN, max_bytes=100, headers=headers)
    sent = {k.lower() for k in server.requests[0][1]}
    assert "cookie" not in sent and "authorization" not in sent and "user-agent" in sent
    assert server.requests[0][1]["Accept-Encoding"] == "identity"


def test_a_declared_length_over_the_limit_is_refused_before_the_body(server):
    server.file("/big.mp4", b"x" * 2000)
    with pytest.raises(TooLarge):
        fetch(server.url("/big.mp4"), max_bytes=1000)


def test_a_body_without_a_length_is_stopped_at_the_limit(server):
    server.file("/endless.mp4", b"x" * 500_000, close_delimited=True)
    out = io.BytesIO()
    with pytest.raises(TooLarge):
        client.download(server.url("/endless.mp4"), out, policy=OPEN, max_bytes=100_000)
    assert len(out.getvalue()) <= 100_000


def test_a_length_that_understates_the_body_never_lets_more_than_the_limit_in(server):
    # Says 1,000 bytes, sends 500,000: nothing past the declared 1,000 is read.
    server.file("/liar.mp4", b"x" * 500_000, length=1000)
    final, data, _ = fetch(server.url("/liar.mp4"), max_bytes=100_000)
    assert len(data) == 1000


def test_a_server_that_stops_sending_is_stopped_after_the_stall_time(server):
    server.stalling("/slow.mp4", b"x" * 100_000, after=1000)
    started = time.monotonic()
    with pytest.raises(Stalled):
        fetch(server.url("/slow.mp4"), policy=client.Policy(allow_private=True, stall_seconds=0.5))
    assert time.monotonic() - started < 5


def test_a_slow_trickle_is_stopped_at_the_deadline(server):
    server.dripping("/drip.mp4", b"x" * 10_000, every=0.1, size=10)
    policy = client.Policy(allow_private=True, stall_seconds=5, deadline=time.monotonic() + 1)
    started = time.monotonic()
    with pytest.raises(TookTooLong):
        fetch(server.url("/drip.mp4"), policy=policy)
    assert time.monotonic() - started < 4


@pytest.mark.parametrize(
    ("status", "words"), [(403, "log-in"), (404, "nothing at this link"), (500, "HTTP 500")]
)
def test_http_errors_have_their_own_messages(server, status, words):
    server.status("/x", status)
    with pytest.raises(HttpError) as error:
        fetch(server.url("/x"))
    assert words in error.value.message


def test_an_international_name_is_sent_as_punycode(server, monkeypatch):
    looked_up = []
    monkeypatch.setattr(addresses, "resolve", lambda host, port: looked_up.append(host) or ["127.0.0.1"])
    server.file("/clip.mp4", b"video")
    final, data, _ = fetch(f"http://bücher.example:{server.port}/clip.mp4")
    assert data == b"video" and looked_up == ["xn--bcher-kva.example"]
    assert server.requests[0][1]["Host"] == f"xn--bcher-kva.example:{server.port}"
