"""yt-dlp behind the guarded client: which video a page names, playlists refused, and every
request it makes checked (with the private-address setting off, nothing on loopback is reached)."""

import pytest

from detector.links import addresses, client, extract
from detector.links.errors import BlockedAddress, LoginRequired, NoVideo, PageTooLarge, Playlist, TooLarge

OPEN = client.Policy(allow_private=True, stall_seconds=2)
LIMITS = extract.Limits(max_bytes=10**7, max_seconds=600)


def run(url, policy=OPEN, limits=LIMITS):
    return extract.extract(url, policy=policy, limits=limits)


def test_a_direct_mp4_link_is_its_own_media(server, clip_bytes):
    server.file("/media/clip.mp4", clip_bytes)
    info = run(server.url("/media/clip.mp4"))
    assert info.media_url == server.url("/media/clip.mp4")
    assert (info.extension, info.site, info.post_id) == (".mp4", "Generic", "clip")


def test_a_page_with_a_video_tag_gives_the_video_and_its_title(server, clip_bytes):
    server.file("/media/clip.mp4", clip_bytes)
    server.page(
        "/post/42",
        "<html><head><title>Rally speech</title></head><body><video src='/media/clip.mp4'></video>",
    )
    info = run(server.url("/post/42"))
    assert info.media_url == server.url("/media/clip.mp4")
    assert "Rally speech" in info.title
    assert info.final_url == server.url("/post/42")


def test_a_page_with_only_an_og_video_tag_gives_that_video(server, clip_bytes):
    server.file("/media/clip.mp4", clip_bytes)
    html = (
        "<html><head><title>News</title>"
        f'<meta property="og:video" content="{server.url("/media/clip.mp4")}">'
        '<meta property="og:video:type" content="video/mp4">'
        '<meta property="og:title" content="Interview"></head><body><p>text</p></body></html>'
    )
    server.page("/article", html)
    info = run(server.url("/article"))
    assert info.media_url == server.url("/media/clip.mp4")


def test_the_final_address_follows_the_pages_redirects(server, clip_bytes):
    server.file("/media/clip.mp4", clip_bytes)
    server.page(
        "/post/7", "<html><head><title>Moved</title></head><body><video src='/media/clip.mp4'></video>"
    )
    server.redirect("/s/abc", "/r/abc")
    server.redirect("/r/abc", "/post/7", 301)
    info = run(server.url("/s/abc"))
    assert info.final_url == server.url("/post/7")
    assert info.media_url == server.url("/media/clip.mp4")


def test_a_page_with_several_videos_is_a_playlist_and_refused(server, clip_bytes):
    server.file("/a.mp4", clip_bytes)
    server.file("/b.mp4", clip_bytes)
    server.page(
        "/gallery",
        "<html><head><title>All</title></head><body><video src='/a.mp4'></video><video src='/b.mp4'></video>",
    )
    with pytest.raises(Playlist) as error:
        run(server.url("/gallery"))
    assert "one video at a time" in error.value.message
    assert "/a.mp4" not in server.paths()  # nothing downloaded


def test_a_page_without_a_video_says_so(server):
    server.page("/blog", "<html><head><title>Words</title></head><body><p>No video here.</p></body></html>")
    with pytest.raises(NoVideo):
        run(server.url("/blog"))


def test_a_page_that_needs_a_log_in_says_so(server):
    server.status("/private", 403)
    with pytest.raises(LoginRequired):
        run(server.url("/private"))


def test_a_huge_page_is_not_read_whole(server):
    server.page("/huge", "<html><body>" + "a" * (extract.PAGE_MAX_BYTES + 1000) + "</body></html>")
    with pytest.raises(PageTooLarge):
        run(server.url("/huge"))


def test_a_format_declared_larger_than_the_limit_is_refused_before_downloading(
    server, clip_bytes, monkeypatch
):
    server.file("/media/clip.mp4", clip_bytes)
    server.page("/post", "<html><head><title>Big</title></head><body><video src='/media/clip.mp4'></video>")
    # yt-dlp reports sizes from site metadata; the generic pages here give none, so add one.
    real = extract._size
    monkeypatch.setattr(
        extract, "_size", lambda fmt: 10**9 if fmt.get("url", "").endswith(".mp4") else real(fmt)
    )
    limits = extract.Limits(10**7, 600, too_large_message=lambda size: f"{size} bytes is too many")
    with pytest.raises(TooLarge) as error:
        run(server.url("/post"), limits=limits)
    assert error.value.message == "1000000000 bytes is too many"
    assert "/media/clip.mp4" not in server.paths()


def test_with_the_setting_off_yt_dlp_cannot_reach_loopback(server, clip_bytes):
    server.file("/media/clip.mp4", clip_bytes)
    with pytest.raises(BlockedAddress):
        run(server.url("/media/clip.mp4"), policy=client.Policy())
    assert server.requests == []


def test_yt_dlps_page_fetch_cannot_be_redirected_inside(server, monkeypatch):
    real = addresses.is_allowed
    monkeypatch.setattr(
        addresses,
        "is_allowed",
        lambda address, *, allow_private=False: (
            str(address) == "127.0.0.1" or real(address, allow_private=allow_private)
        ),
    )
    server.redirect("/post", "http://169.254.169.254/latest/meta-data/")
    with pytest.raises(BlockedAddress):
        run(server.url("/post"), policy=client.Policy())
    assert server.paths() == ["/post"]


def test_the_best_direct_format_up_to_1080p_within_the_limit_is_chosen():
    # yt-dlp lists formats worst to best.
    formats = [
        {"format_id": "hls", "protocol": "m3u8_native", "url": "u0", "height": 1080},
        {"format_id": "360", "protocol": "https", "url": "u1", "height": 360, "filesize": 10},
        {"format_id": "audio", "protocol": "https", "url": "u2", "vcodec": "none"},
        {"format_id": "1080", "protocol": "https", "url": "u3", "height": 1080, "vcodec": "avc1"},
        {"format_id": "2160", "protocol": "https", "url": "u4", "height": 2160, "filesize": 50},
        {"format_id": "huge", "protocol": "https", "url": "u5", "height": 720, "filesize": 10**12},
    ]
    verdict = {}
    chosen = list(extract._format_selector(LIMITS, verdict)({"formats": formats}))
    assert [f["format_id"] for f in chosen] == ["1080"] and verdict == {}


def test_with_only_segmented_or_oversized_formats_the_reason_is_kept():
    verdict = {}
    hls = [{"format_id": "hls", "protocol": "m3u8_native", "url": "u", "height": 720}]
    assert list(extract._format_selector(LIMITS, verdict)({"formats": hls})) == []
    assert verdict["reason"].code == "no_usable_format"
    big = [{"format_id": "big", "protocol": "https", "url": "u", "filesize": 10**12}]
    assert list(extract._format_selector(LIMITS, verdict)({"formats": big})) == []
    assert verdict["reason"].code == "too_large"
