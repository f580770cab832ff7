"""Shared fixtures: fast isolated settings, real Redis, and real Celery worker processes.

Every test session uses its own queue names and its own test database, so a developer's
running service (or a second test run) never steals or feeds this session's jobs.
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
SESSION_TAG = uuid.uuid4().hex[:8]
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(autouse=True)
def _isolated_settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.REPORT_SIGNING_KEY_DIR = tmp_path / "report-keys"  # never the developer's key
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # Each test's own memory cache: never a developer's Redis (tests that need Redis say so).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    # A file (not :memory:) so worker subprocesses can open the same SQLite test database,
    # and a per-process PostgreSQL name so concurrent runs never drop each other's database.
    from django.conf import settings

    db = settings.DATABASES["default"]
    test = db.setdefault("TEST", {})
    if db["ENGINE"].endswith("sqlite3"):
        test["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")
    else:
        test["NAME"] = f"test_deepfake_{os.getpid()}"


def redis_answers(url, timeout=1.0):
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 6379), timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url():
    if not redis_answers(TEST_REDIS_URL):
        pytest.skip(f"Redis is not running at {TEST_REDIS_URL} (start redis-server to run this test)")
    return TEST_REDIS_URL


@pytest.fixture(scope="session")
def queue_names():
    return {"gpu": f"test-gpu-{SESSION_TAG}", "default": f"test-default-{SESSION_TAG}"}


@pytest.fixture
def celery_broker(redis_url, queue_names, settings):
    """Point this process's Celery app at the test broker and this session's queues."""
    from deepfake_site.celery import app

    saved = {
        key: app.conf[key]
        for key in ("broker_url", "task_default_queue", "task_routes", "broker_transport_options")
    }
    app.conf.broker_url = redis_url
    app.conf.task_default_queue = queue_names["default"]
    app.conf.task_routes = {"detector.tasks.analyze_submission": {"queue": queue_names["gpu"]}}
    app.conf.broker_transport_options = {"visibility_timeout": 3600}
    app.amqp.flush_routes()
    reset_connections(app)
    yield app
    app.conf.update(saved)
    app.amqp.flush_routes()
    reset_connections(app)


def reset_connections(app):
    """Drop pooled broker connections and cached routing so the next publish uses the current conf."""
    # Celery caches its router and queue table on first send; a test that sent before the
    # fixture switched queues would otherwise route every later job to a queue nobody consumes.
    for cached in ("router", "queues", "default_queue"):
        app.amqp.__dict__.pop(cached, None)
    import kombu.pools

    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    # Celery's pools live in kombu's global registry, keyed by URL: a closed pool would be reused.
    kombu.pools.reset()


def database_url_for_subprocess():
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return "sqlite:///" + str(db["NAME"])
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class WorkerProcess:
    def __init__(self, proc, log_path):
        self.proc = proc
        self.log_path = log_path

    @property
    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log:
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log[-4000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log[-4000:]}")

    def stop(self, sig=None):
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig or signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def start_worker(settings, queue_names, tmp_path):
    """Factory: start a real `celery worker` process on this test's database and media.

    Use with `transactional_db` (the worker reads committed rows) and `celery_broker`.
    """
    from deepfake_site.celery import app

    workers = []

    def start(broker_url=None, concurrency=1, extra_env=None, queues=None, ready=True):
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "deepfake_site.settings",
                "DATABASE_URL": database_url_for_subprocess(),
                "MEDIA_ROOT": str(settings.MEDIA_ROOT),
                "CELERY_BROKER_URL": broker_url or app.conf.broker_url,
                "CELERY_GPU_QUEUE": queue_names["gpu"],
                "CELERY_DEFAULT_QUEUE": queue_names["default"],
                "VAR_DIR": str(tmp_path / "var"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra_env or {})
        log_path = tmp_path / f"worker-{len(workers)}.log"
        queue_list = queues or f"{queue_names['gpu']},{queue_names['default']}"
        cmd = [sys.executable, "-m", "celery", "-A", "deepfake_site", "worker", "-Q", queue_list,
               "-c", str(concurrency), "--loglevel", "INFO", "-n", f"test-{uuid.uuid4().hex[:6]}@%h",
               "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
        with open(log_path, "w") as log_file:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        worker = WorkerProcess(proc, log_path)
        workers.append(worker)
        return worker.wait_ready() if ready else worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(predicate, timeout=60, interval=0.2, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
