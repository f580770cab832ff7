"""Real processes: a link sent from the page is fetched by a worker on the fetch queue (never the
GPU worker), then analysed by the GPU worker, to the same verdict as an upload of the same file."""

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from detector.models import Submission
from tests.conftest import SESSION_TAG, reset_connections, wait_for
from tests.detector._worker_support import install_tiny_model
from tests.helpers.web import make_user

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def finished(pk):
    return (
        Submission.objects.filter(pk=pk, status__in=["done", "failed"])
        .select_related("current_result")
        .first()
    )


def test_a_link_is_fetched_on_its_own_queue_and_gets_the_uploads_verdict(
    celery_broker, start_worker, queue_names, server, clip_bytes, settings, tmp_path
):
    fetch_queue = f"test-fetch-{SESSION_TAG}-{uuid.uuid4().hex[:4]}"
    celery_broker.conf.task_routes = {
        "detector.tasks.analyze_submission": {"queue": queue_names["gpu"]},
        "detector.tasks.fetch_link": {"queue": fetch_queue},
    }
    celery_broker.amqp.flush_routes()
    reset_connections(celery_broker)
    settings.LINK_ALLOW_PRIVATE_ADDRESSES = True  # the "site" is the test's loopback server
    install_tiny_model(tmp_path)
    gpu = start_worker(queues=queue_names["gpu"])
    fetcher = start_worker(
        queues=fetch_queue,
        extra_env={"CELERY_FETCH_QUEUE": fetch_queue, "LINK_ALLOW_PRIVATE_ADDRESSES": "true"},
    )
    server.file("/media/clip.mp4", clip_bytes)
    server.page(
        "/post/9", "<html><head><title>Press call</title></head><body><video src='/media/clip.mp4'></video>"
    )

    client = Client()
    client.force_login(make_user("fact-checker"))
    linked = client.post("/submissions/new/", {"link": server.url("/post/9"), "frames": "10"})
    uploaded = client.post(
        "/submissions/new/", {"video": SimpleUploadedFile("clip.mp4", clip_bytes), "frames": "10"}
    )
    assert linked.status_code == uploaded.status_code == 302
    by_link, by_upload = (
        Submission.objects.get(source_url=server.url("/post/9")),
        Submission.objects.get(source_url=""),
    )

    link_row = wait_for(
        lambda: finished(by_link.pk), timeout=240, message=f"the link's verdict\n{fetcher.log[-3000:]}"
    )
    upload_row = wait_for(lambda: finished(by_upload.pk), timeout=240, message="the upload's verdict")
    assert link_row.status == upload_row.status == "done", link_row.error_message
    assert link_row.current_result.verdict == upload_row.current_result.verdict
    assert link_row.current_result.fake_probability == pytest.approx(
        upload_row.current_result.fake_probability
    )
    # Each worker lists every task at start; the jobs it ran are logged as "Task NAME[id] ...".
    assert (
        "Task detector.tasks.fetch_link[" in fetcher.log and "Task detector.tasks.fetch_link[" not in gpu.log
    )
    assert "Task detector.tasks.analyze_submission[" in gpu.log
    assert "Task detector.tasks.analyze_submission[" not in fetcher.log

    page = client.get(f"/submissions/{by_link.public_id}/").content.decode()
    assert 'data-testid="verdict"' in page and 'data-testid="provenance"' in page
    assert link_row.fetched_sha256 in page and "Press call" in page
