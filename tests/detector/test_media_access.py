"""Private media: only the owner (or reviewing staff) gets videos, crops and overlays; everyone else a 404."""

import pytest
from django.test import Client
from django.urls import reverse

from detector.models import FrameImage
from tests.helpers.web import VIDEO_BYTES, image_bytes, make_result, make_submission, make_user, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def done(owner):
    submission = make_submission(owner, name="../we ird\u202e name.mp4")
    result = make_result(submission, frames=2)
    frame = FrameImage.objects.filter(result=result).order_by("position").first()
    return submission, frame


def client_for(user):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def video_url(submission):
    return reverse("submission-video", kwargs={"public_id": submission.public_id})


def image_url(submission, frame, kind):
    return reverse(
        "submission-frame-image",
        kwargs={"public_id": submission.public_id, "frame_id": frame.pk, "kind": kind},
    )


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_the_owner_gets_the_video_with_private_headers(owner, done):
    submission, _ = done
    response = client_for(owner).get(video_url(submission))
    assert response.status_code == 200
    assert body(response) == VIDEO_BYTES
    assert response["Content-Type"] == "video/mp4"
    assert response["Content-Length"] == str(len(VIDEO_BYTES))
    assert response["Content-Disposition"].startswith("inline;")
    assert "/" not in response["Content-Disposition"].split("filename=")[1]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"].startswith("private")
    assert response["Accept-Ranges"] == "bytes"


def test_the_video_answers_byte_ranges_so_the_player_can_seek(owner, done):
    submission, _ = done
    client = client_for(owner)
    response = client.get(video_url(submission), HTTP_RANGE="bytes=100-199")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-199/{len(VIDEO_BYTES)}"
    assert response["Content-Length"] == "100"
    assert body(response) == VIDEO_BYTES[100:200]
    tail = client.get(video_url(submission), HTTP_RANGE="bytes=-10")
    assert body(tail) == VIDEO_BYTES[-10:]
    open_ended = client.get(video_url(submission), HTTP_RANGE="bytes=10000-")
    assert body(open_ended) == VIDEO_BYTES[10000:]


def test_an_unsatisfiable_range_is_416(owner, done):
    submission, _ = done
    response = client_for(owner).get(video_url(submission), HTTP_RANGE=f"bytes={len(VIDEO_BYTES)}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(VIDEO_BYTES)}"


def test_a_malformed_range_gets_the_whole_file(owner, done):
    submission, _ = done
    response = client_for(owner).get(video_url(submission), HTTP_RANGE="bytes=0-1,5-6")
    assert response.status_code == 200
    assert body(response) == VIDEO_BYTES


def test_the_owner_gets_crops_and_overlays_with_their_image_types(owner, done):
    submission, frame = done
    client = client_for(owner)
    crop = client.get(image_url(submission, frame, "crop"))
    overlay = client.get(image_url(submission, frame, "overlay"))
    assert crop.status_code == 200 and crop["Content-Type"] == "image/png"
    assert body(crop) == image_bytes(".png")
    assert overlay.status_code == 200 and overlay["Content-Type"] == "image/jpeg"
    assert crop["X-Content-Type-Options"] == "nosniff"
    assert crop["Cache-Control"].startswith("private")
    assert crop["Content-Disposition"].startswith("inline;")


@pytest.mark.parametrize("who", ["other", "anonymous"])
def test_everyone_else_gets_404_for_every_file(who, other, done):
    submission, frame = done
    client = client_for(other if who == "other" else None)
    assert client.get(video_url(submission)).status_code == 404
    assert client.get(image_url(submission, frame, "crop")).status_code == 404
    assert client.get(image_url(submission, frame, "overlay")).status_code == 404


def test_reviewing_staff_may_fetch_anyones_media(done):
    submission, frame = done
    reviewer = client_for(make_user("reviewer", reviewer=True))
    assert reviewer.get(video_url(submission)).status_code == 200
    assert reviewer.get(image_url(submission, frame, "overlay")).status_code == 200


def test_staff_without_the_review_permission_get_404(done):
    submission, frame = done
    staff = client_for(make_user("staffer", staff=True))
    assert staff.get(video_url(submission)).status_code == 404
    assert staff.get(image_url(submission, frame, "crop")).status_code == 404


def test_a_frame_of_another_submission_cannot_be_reached_through_mine(owner, other, done):
    _, their_frame = done
    mine = make_submission(other)
    assert client_for(other).get(image_url(mine, their_frame, "crop")).status_code == 404


def test_an_unknown_kind_is_404(owner, done):
    submission, frame = done
    assert client_for(owner).get(image_url(submission, frame, "video")).status_code == 404


def test_media_views_refuse_post(owner, done):
    submission, frame = done
    client = client_for(owner)
    assert client.post(video_url(submission)).status_code == 405
    assert client.post(image_url(submission, frame, "crop")).status_code == 405


def test_head_works_for_the_player(owner, done):
    submission, _ = done
    response = client_for(owner).head(video_url(submission))
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(VIDEO_BYTES))


def test_api_tokens_fetch_media_and_bad_tokens_get_404(owner, other, done):
    submission, frame = done
    assert (
        Client().get(video_url(submission), HTTP_AUTHORIZATION=f"Token {token_for(owner)}").status_code == 200
    )
    assert (
        Client().get(video_url(submission), HTTP_AUTHORIZATION=f"Token {token_for(other)}").status_code == 404
    )
    assert Client().get(video_url(submission), HTTP_AUTHORIZATION="Token nonsense").status_code == 404


def test_purged_media_is_gone_but_the_page_still_works(owner, done):
    from django.utils import timezone

    submission, frame = done
    submission.media_purged_at = timezone.now()
    submission.save()
    client = client_for(owner)
    assert client.get(video_url(submission)).status_code == 404
    assert client.get(image_url(submission, frame, "crop")).status_code == 404
    page = client.get(reverse("submission-detail", kwargs={"public_id": submission.public_id}))
    assert page.status_code == 200
    assert b"The video file has been removed" in page.content


def test_a_missing_file_is_404_not_500(owner, done):
    submission, _ = done
    submission.video.storage.delete(submission.video.name)
    assert client_for(owner).get(video_url(submission)).status_code == 404


def test_with_x_accel_redirect_nginx_sends_the_file(owner, done, settings):
    settings.MEDIA_ACCEL_REDIRECT_PREFIX = "/protected-media/"
    submission, frame = done
    response = client_for(owner).get(video_url(submission))
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/protected-media/{submission.video.name}"
    assert response.content == b""
    assert response["Content-Type"] == "video/mp4"
    assert response["Cache-Control"].startswith("private")
    # The ownership check still comes first.
    assert client_for(make_user("intruder")).get(video_url(submission)).status_code == 404
    crop = client_for(owner).get(image_url(submission, frame, "crop"))
    assert crop["X-Accel-Redirect"] == f"/protected-media/{frame.crop.name}"


@pytest.mark.parametrize("debug", [False, True])
def test_no_media_is_reachable_under_a_public_media_url(owner, done, settings, debug):
    settings.DEBUG = debug
    submission, frame = done
    client = client_for(owner)
    for name in (submission.video.name, frame.crop.name):
        for prefix in ("/media/", "/"):
            assert client.get(prefix + name).status_code == 404, prefix + name
