"""PostgreSQL restarts in the middle of a job: the job finishes (or is retried) and nothing is duplicated.

Runs against a private PostgreSQL cluster (initdb in a temp folder, a free port) so the shared
one on 5432 is never touched. Everything on that cluster runs in subprocesses (migrate, setup,
the worker, requeue_stuck as beat would run it), because this test process's own test database
is set up by pytest-django elsewhere.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, TEST_REDIS_URL, redis_answers
from tests.faults.conftest import free_port

pytestmark = pytest.mark.slow

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    def __init__(self, base):
        self.base, self.port = base, free_port()
        self.data, self.sock = base / "data", base / "sock"

    def as_postgres(self, *cmd):
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *cmd], capture_output=True, text=True, check=True
        )

    def init(self):
        self.sock.mkdir(parents=True)
        shutil.chown(self.base, "postgres")
        shutil.chown(self.sock, "postgres")
        self.as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        self.start()
        self.as_postgres(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "deepfake")

    def ctl(self, action, *extra):
        options = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", *extra, action)

    def start(self):
        self.ctl("start", "-l", str(self.base / "pg.log"))

    def restart(self):
        # -l matters: without it the new postmaster keeps our captured stdout open forever.
        self.ctl("restart", "-m", "fast", "-l", str(self.base / "pg.log"))

    def stop(self):
        try:
            self.ctl("stop", "-m", "immediate")
        except subprocess.CalledProcessError:
            pass

    @property
    def url(self):
        return f"postgresql://postgres@127.0.0.1:{self.port}/deepfake"


@pytest.fixture
def private_postgres(tmp_path):
    if os.geteuid() != 0 or not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.skip("needs root, runuser and PostgreSQL 15 binaries to run a private cluster")
    # Outside pytest's tmp folder: its parents are private to root, and postgres must reach the data.
    base = Path(tempfile.mkdtemp(prefix="pg-fault-"))
    base.chmod(0o755)
    server = PrivatePostgres(base)
    try:
        server.init()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


SETUP = """
import json
from django.core.files import File
from detector.models import Submission, User
from detector.registry import install_checkpoint, activate_detector
from detector.services import enqueue_analysis
from tests.helpers.checkpoints import make_tiny_checkpoint
from tests.helpers.videos import make_face_video
activate_detector(install_checkpoint(make_tiny_checkpoint({work!r} + "/tiny.pt")))
user = User.objects.create_user("pg-restart", password="pw-pg-restart-1")
video = make_face_video({work!r} + "/face.mp4", count=20)
sub = Submission(owner=user, frames_requested=10, original_name="face.mp4")
sub._stored_extension = ".mp4"
with open(video, "rb") as f:
    sub.video.save("v.mp4", File(f), save=False)
sub.save()
enqueue_analysis(sub)
print(json.dumps(sub.pk))
"""

STATE = """
import json
from detector.models import Result, Submission
s = Submission.objects.get(pk={pk})
n = Result.objects.filter(submission=s).count()
print(json.dumps([s.status, s.stage, s.attempts, n, s.error_message]))
"""


def test_a_postgres_restart_during_a_job_ends_with_exactly_one_result(
    private_postgres, tmp_path, queue_names
):
    if not redis_answers(TEST_REDIS_URL):
        pytest.skip("needs the test Redis for the broker")
    env = dict(os.environ) | {
        "DJANGO_SETTINGS_MODULE": "tests.faults.fast_lease_settings",
        "DATABASE_URL": private_postgres.url,
        "MEDIA_ROOT": str(tmp_path / "media"),
        "VAR_DIR": str(tmp_path / "var"),
        "DETECTOR_CACHE_DIR": str(tmp_path / "cache"),
        "CELERY_BROKER_URL": TEST_REDIS_URL,
        "CELERY_GPU_QUEUE": queue_names["gpu"] + "-pg",
        "CELERY_DEFAULT_QUEUE": queue_names["default"] + "-pg",
        "DETECTOR_TEST_STAGE_DELAY": "2",
        "DETECTOR_EXPLAIN": "false",
        "PYTHONUNBUFFERED": "1",
    }

    def manage(*args):
        out = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    def state(pk):
        return json.loads(manage("shell", "-c", STATE.format(pk=pk)).strip().splitlines()[-1])

    manage("migrate", "--noinput")
    pk = json.loads(manage("shell", "-c", SETUP.format(work=str(tmp_path))).strip().splitlines()[-1])
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "deepfake_site", "worker", "-Q",
         f"{env['CELERY_GPU_QUEUE']},{env['CELERY_DEFAULT_QUEUE']}", "-c", "1", "--loglevel", "INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while state(pk)[0] != "running":
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.5)

        private_postgres.restart()  # every open connection breaks mid-job

        deadline = time.monotonic() + 150
        while (current := state(pk))[0] not in ("done", "failed"):
            assert time.monotonic() < deadline, f"{current}\n" + (tmp_path / "worker.log").read_text()[-4000:]
            manage("requeue_stuck")  # what beat runs every 30 s
            time.sleep(3)
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=30)
        log.close()

    status, _stage, attempts, results, message = state(pk)
    assert status == "done", message + (tmp_path / "worker.log").read_text()[-4000:]
    assert results == 1
    assert 1 <= attempts <= 3
