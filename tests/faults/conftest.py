"""Fixtures for the fault-injection tests: a private redis-server we may kill, worker helpers.

Never touch the shared Redis (6379) or PostgreSQL (5432): other test runs use them. A fault
test that needs to stop a service starts its own on a free port.
"""

import shutil
import socket
import subprocess
import time

import pytest

from detector.models import Submission
from tests.conftest import redis_answers, reset_connections, wait_for

Status = Submission.Status


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A throwaway redis-server on a fixed free port: start, kill -9, start again."""

    def __init__(self, workdir):
        self.port = free_port()
        self.workdir = workdir
        self.proc = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(lambda: redis_answers(self.url), timeout=15, message=f"private redis on {self.port}")
        return self

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        wait_for(lambda: not redis_answers(self.url, timeout=0.3), timeout=10, message="redis to stop")


@pytest.fixture
def private_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed; the Redis fault tests need a private one")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def private_broker(private_redis, celery_broker):
    """This process's Celery app publishing to the private Redis (and this session's queues)."""
    celery_broker.conf.broker_url = private_redis.url
    celery_broker.conf.broker_transport_options = {"visibility_timeout": 3600, "socket_connect_timeout": 1}
    reset_connections(celery_broker)
    yield celery_broker
    reset_connections(celery_broker)


@pytest.fixture
def worker_env(tmp_path):
    worker_tmp = tmp_path / "worker-tmp"
    worker_tmp.mkdir()
    return {"DETECTOR_CACHE_DIR": str(tmp_path / "worker-model-cache"), "TMPDIR": str(worker_tmp)}


def finished(submission, timeout=120, worker=None):
    try:
        return wait_for(
            lambda: Submission.objects.filter(
                pk=submission.pk, status__in=[Status.DONE, Status.FAILED]
            ).first(),
            timeout=timeout,
            message=f"submission {submission.pk} to finish",
        )
    except AssertionError as exc:
        row = Submission.objects.filter(pk=submission.pk).values("status", "stage", "attempts").first()
        raise AssertionError(f"{exc}; row {row}\n{worker.log[-4000:] if worker else ''}") from None


def finished_with_beat(submission, timeout=120, every=3.0):
    """Wait for the job to end while running requeue_stuck every few seconds, as beat would."""
    from detector.worker.recovery import requeue_stuck

    last = [0.0]

    def done():
        if time.monotonic() - last[0] >= every:
            last[0] = time.monotonic()
            requeue_stuck()
        return Submission.objects.filter(pk=submission.pk, status__in=[Status.DONE, Status.FAILED]).first()

    return wait_for(done, timeout=timeout, message=f"submission {submission.pk} to finish (with beat)")


def running_holder_pid(submission, timeout=90, exclude=()):
    """PID of the pool process holding the job (from its claim token), once it is running."""

    def holder():
        row = (
            Submission.objects.filter(pk=submission.pk, status=Status.RUNNING).exclude(claim_token="").first()
        )
        if row is None:
            return None
        pid = int(row.claim_token.split("|")[2])
        return None if pid in exclude else pid

    return wait_for(holder, timeout=timeout, interval=0.1, message="a worker to claim the job")


def files_under(root, prefix):
    base = root / prefix
    return sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []


def pause(seconds):
    time.sleep(seconds)
