"""`make run` end to end: scripts/run.py brings up web + worker, restarts a child that dies, and
Ctrl-C or SIGTERM stops all of it, grandchildren included."""

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from tests.conftest import ROOT, wait_for
from tests.helpers.checkpoints import make_tiny_checkpoint
from tests.helpers.videos import make_face_video

pytestmark = pytest.mark.slow


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children_of(pid):
    result = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,args="], capture_output=True, text=True)
    rows = [line.split(None, 2) for line in result.stdout.splitlines()]
    return [row for row in rows if len(row) == 3 and row[1] == str(pid)]


def test_with_no_redis_at_all_the_service_runs_on_the_embedded_broker(tmp_path):
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",  # nothing listens there
            "REDIS_SERVER_BIN": "",  # and no redis-server to start
            "RUN_PORT": str(port),
            "VAR_DIR": str(tmp_path / "var"),
            "MEDIA_ROOT": str(tmp_path / "media"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "scripts/run.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:

        def healthy():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    return json.load(response)
            except OSError:
                return None

        body = wait_for(healthy, timeout=90, message="/healthz to answer")
        assert body["status"] == "ok"
        assert body["broker"]["transport"] == "filesystem"
        text = log_path.read_text()
        assert "EMBEDDED filesystem broker" in text
        wait_for(lambda: " ready." in log_path.read_text(), timeout=90, message="the worker to be ready")
        names = " ".join(row[2] for row in children_of(proc.pid))
        assert "runserver" in names and "celery" in names
        child_pids = [int(row[0]) for row in children_of(proc.pid)]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert "[run] stopped" in log_path.read_text()
    time.sleep(0.5)
    for pid in child_pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def processes():
    """{pid: (pgid, state, args)} of every process on the machine, zombies included."""
    result = subprocess.run(["ps", "-e", "-o", "pid=,pgid=,stat=,args="], capture_output=True, text=True)
    rows = [line.split(None, 3) for line in result.stdout.splitlines()]
    return {int(r[0]): (int(r[1]), r[2], r[3] if len(r) > 3 else "") for r in rows if len(r) >= 3}


def alive(pids):
    """Those of `pids` still running (a zombie has finished; only its parent has not reaped it)."""
    table = processes()
    return [pid for pid in pids if pid in table and not table[pid][1].startswith("Z")]


def tagged(tag):
    """Live processes whose environment carries `tag`: whatever the supervisor started, however
    deep, even after being reparented to PID 1."""
    found = []
    for pid in alive(list(processes())):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if f"RUN_TEST_TAG={tag}".encode() in f.read().split(b"\0"):
                    found.append(pid)
        except OSError:
            continue
    return found


def start_supervisor(tmp_path, **extra):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed; this test runs the service on a private one")
    port = free_port()
    tag = uuid.uuid4().hex
    env = dict(os.environ)
    env.update(
        {
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing there: a private redis
            "RUN_PORT": str(port),
            "VAR_DIR": str(tmp_path / "var"),
            "MEDIA_ROOT": str(tmp_path / "media"),
            "PYTHONUNBUFFERED": "1",
            "RUN_TEST_TAG": tag,
        }
    )
    env.update(extra)
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "scripts/run.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return proc, port, tag, log_path


def healthz_status(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def child_pid(proc, word, log_path, exclude=()):
    """PID of the supervisor's child whose command line has `word` (and is not in `exclude`)."""
    assert proc.poll() is None, f"the supervisor exited:\n{log_path.read_text()[-4000:]}"
    for pid, _ppid, args in children_of(proc.pid):
        if word in args and int(pid) not in exclude:
            return int(pid)
    return None


def test_it_restarts_a_killed_worker_keeps_the_web_up_and_leaves_no_process_behind(tmp_path):
    proc, port, tag, log_path = start_supervisor(tmp_path)
    try:
        wait_for(lambda: healthz_status(port) == 200, timeout=120, message="/healthz to answer")
        wait_for(lambda: " ready." in log_path.read_text(), timeout=120, message="the worker to be ready")
        web = child_pid(proc, "runserver", log_path)
        worker = child_pid(proc, "celery", log_path)
        # The worker's own children (its pool, the embedded beat) share its process group.
        old_group = [pid for pid, row in processes().items() if row[0] == worker]
        assert len(old_group) >= 3, processes()

        answers = []
        polling = threading.Event()

        def poll_web():
            while not polling.is_set():
                answers.append(healthz_status(port))
                time.sleep(0.2)

        poller = threading.Thread(target=poll_web, daemon=True)
        poller.start()
        killed_at = time.monotonic()
        os.kill(worker, signal.SIGKILL)
        try:
            new_worker = wait_for(
                lambda: child_pid(proc, "celery", log_path, exclude={worker}),
                timeout=120,
                message="a new worker",
            )
            wait_for(
                lambda: log_path.read_text().count(" ready.") >= 2,
                timeout=120,
                message="the new worker to be ready",
            )
            back_after = time.monotonic() - killed_at
            # Nothing of the killed worker lingers: not its pool, not its beat.
            wait_for(lambda: not alive(old_group), timeout=30, message="the old worker's processes to end")
        finally:
            polling.set()
            poller.join(timeout=10)
        assert answers and set(answers) == {200}, answers  # the web server never stopped answering
        assert child_pid(proc, "runserver", log_path) == web
        assert new_worker != worker
        print(f"worker back and ready {back_after:.1f} s after kill -9")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=90)
    text = log_path.read_text()
    assert "[run] stopped" in text
    assert "worker exited with code -9" in text
    wait_for(lambda: not tagged(tag), timeout=30, message=f"every child to end: {tagged(tag)}")


def test_it_gives_up_loudly_on_a_child_that_keeps_crashing_and_leaves_nothing(tmp_path):
    # An invalid concurrency: the worker exits at once, every time.
    proc, port, tag, log_path = start_supervisor(tmp_path, WORKER_CONCURRENCY="not-a-number")
    try:
        code = proc.wait(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log_path.read_text()
    assert code == 1, text[-4000:]
    assert "restarting it in" in text
    assert "GIVING UP: worker exited with code 2" in text, text[-4000:]
    assert "[run] stopped" in text
    wait_for(lambda: not tagged(tag), timeout=30, message=f"every child to end: {tagged(tag)}")


def manage(tmp_path, broker_url, *args):
    env = dict(os.environ)
    env.update(
        {
            "VAR_DIR": str(tmp_path / "var"),
            "MEDIA_ROOT": str(tmp_path / "media"),
            "CELERY_BROKER_URL": broker_url,
            "CACHE_URL": "",
        }
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )


def statuses(tmp_path):
    """[(status, attempts, results)] of every submission, oldest first, read from the service's SQLite."""
    with sqlite3.connect(tmp_path / "var" / "db.sqlite3", timeout=10) as db:
        return db.execute(
            "SELECT status, attempts, (SELECT COUNT(*) FROM detector_result r WHERE r.submission_id = s.id)"
            " FROM detector_submission s ORDER BY id"
        ).fetchall()


def test_a_killed_private_redis_is_restarted_and_the_job_it_lost_still_runs_once(tmp_path):
    # QUEUED_RESEND_SECONDS=120 (the default) measures the README's figure; 30 keeps the test short.
    lease = int(os.environ.get("QUEUED_RESEND_SECONDS", "30"))
    checkpoint = make_tiny_checkpoint(tmp_path / "tiny.pt")
    videos = [make_face_video(tmp_path / f"clip{i}.mp4", count=20) for i in (1, 2)]
    proc, port, tag, log_path = start_supervisor(
        tmp_path,
        DETECTOR_DEFAULT_CHECKPOINT=str(checkpoint),
        QUEUED_RESEND_SECONDS=str(lease),
        DETECTOR_TEST_STAGE_DELAY="3",  # the first job holds the only worker while Redis dies
    )
    try:
        wait_for(lambda: " ready." in log_path.read_text(), timeout=120, message="the worker to be ready")
        broker = re.search(r"private redis-server at (redis://\S+)", log_path.read_text()).group(1)
        manage(
            tmp_path, broker, "shell", "-c", "from detector.models import User; User.objects.create_user('a')"
        )
        manage(tmp_path, broker, "analyze", *map(str, videos), "--user", "a", "--frames", "10")
        wait_for(
            lambda: [row[0] for row in statuses(tmp_path)] == ["running", "queued"],
            timeout=120,
            message="the first job to run while the second waits in Redis",
        )
        redis = child_pid(proc, "redis-server", log_path)
        os.kill(redis, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(
            lambda: child_pid(proc, "redis-server", log_path, exclude={redis}),
            timeout=60,
            message="the supervisor to restart redis-server",
        )
        wait_for(
            lambda: [row[0] for row in statuses(tmp_path)] == ["done", "done"],
            timeout=lease + 240,
            message=f"both jobs to finish: {statuses(tmp_path)}\n{log_path.read_text()[-3000:]}",
        )
        print(f"the lost job was done {time.monotonic() - killed_at:.0f} s after Redis was killed")
        assert [row[1:] for row in statuses(tmp_path)] == [(1, 1), (1, 1)]  # one attempt, one result each
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=90)
    assert "redis exited with code -9; restarting it in" in log_path.read_text()
    wait_for(lambda: not tagged(tag), timeout=30, message=f"every child to end: {tagged(tag)}")
