"""`make run` end to end: scripts/run.py brings up web + worker and Ctrl-C stops all of it."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import ROOT, wait_for

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
