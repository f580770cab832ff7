"""The queue end to end: a real `celery worker` process, a real broker, a real database row."""

import uuid

import pytest

from detector.models import Ping
from detector.tasks import ping
from tests.conftest import reset_connections, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_on_redis_runs_a_task_that_writes_to_the_database(celery_broker, start_worker):
    start_worker()
    token = uuid.uuid4().hex
    Ping.objects.create(token=token)
    ping.delay(token)
    row = wait_for(
        lambda: Ping.objects.filter(token=token, handled_at__isnull=False).first(),
        timeout=60,
        message="the worker to handle the ping",
    )
    assert row.handled_by


def test_the_embedded_filesystem_broker_works_with_a_real_worker(tmp_path, start_worker):
    from deepfake_site.celery import app

    folder = tmp_path / "broker"
    (folder / "queue").mkdir(parents=True)
    (folder / "processed").mkdir()
    (folder / "control").mkdir()
    options = {
        "control_folder": str(folder / "control"),
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
    }
    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    app.conf.broker_url = "filesystem://"
    app.conf.broker_transport_options = options
    reset_connections(app)
    try:
        start_worker(
            broker_url="filesystem://",
            queues="celery",
            extra_env={"CELERY_FILESYSTEM_BROKER_DIR": str(folder), "CELERY_DEFAULT_QUEUE": "celery"},
        )
        token = uuid.uuid4().hex
        Ping.objects.create(token=token)
        ping.apply_async(args=[token], queue="celery")
        wait_for(
            lambda: Ping.objects.filter(token=token, handled_at__isnull=False).exists(),
            timeout=60,
            message="the worker to handle the ping through the filesystem broker",
        )
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = saved
        reset_connections(app)
