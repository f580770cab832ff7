"""Run the whole service: a broker, migrations, the web server, a Celery worker (with beat) and a
second worker that fetches links (its own queue, so downloads never wait behind an analysis).

Broker: the configured Redis when it answers; else a private redis-server on a free port
when the binary exists; else kombu's filesystem transport (an embedded broker), so a
machine with no Redis still runs end to end.

A supervisor: each child runs in its own process group, so the worker's pool and its embedded
beat go with it. A child that dies is stopped whole (every process of its group) and started
again after a back-off (1, 2, 4, 8 s); one that dies FAST_CRASHES times in a row, each within
STABLE_SECONDS of starting, stops the service with a loud message instead of looping. Ctrl-C,
SIGTERM or SIGHUP stops every child, grandchildren included.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
VAR = Path(os.environ.get("VAR_DIR", ROOT / "var"))

STABLE_SECONDS = 60  # a child that ran this long before dying starts a new count of crashes
FAST_CRASHES = 5  # dying this many times in a row, each time sooner than STABLE_SECONDS: give up
STOP_GRACE_SECONDS = 15  # SIGTERM, then SIGKILL for whatever is still running


def log(message):
    print(f"[run] {message}", flush=True)


class Stop(Exception):
    """The supervisor was asked to stop (Ctrl-C, SIGTERM, SIGHUP)."""


def group_alive(pgid):
    """True while any process of the group is running (zombies only wait to be reaped: not running)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        try:
            # Fields after the command name (which may hold spaces): state, ppid, pgrp, ...
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def signal_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


class Child:
    """One supervised command. Started in a new session, its PID is its process group's id, which
    the group keeps after the leader dies: that is how orphaned grandchildren are still found."""

    def __init__(self, name, argv, env, **popen):
        self.name, self.argv, self.env, self.popen = name, argv, env, popen
        self.proc = None
        self.started_at = 0.0
        self.crashes = 0  # in a row, each sooner than STABLE_SECONDS after its start
        self.restart_at = None

    def start(self):
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, start_new_session=True, **self.popen)
        self.started_at = time.monotonic()
        self.restart_at = None
        log(f"{self.name}: started (pid {self.proc.pid})")
        return self

    def exited(self):
        """The exit code once the main process has ended (and has not been handled yet), else None."""
        if self.proc is None or self.restart_at is not None:
            return None
        return self.proc.poll()

    def backoff(self, now):
        """Count this crash; seconds to wait before the restart, or None to give up."""
        self.crashes = self.crashes + 1 if now - self.started_at < STABLE_SECONDS else 1
        if self.crashes >= FAST_CRASHES:
            return None
        return 2 ** (self.crashes - 1)  # 1, 2, 4, 8 s

    def terminate(self):
        if self.proc is not None:
            signal_group(self.proc.pid, signal.SIGTERM)

    def kill(self):
        if self.proc is not None:
            signal_group(self.proc.pid, signal.SIGKILL)

    def running(self):
        if self.proc is None:
            return False
        self.proc.poll()  # reap the leader, so only live members keep the group
        return group_alive(self.proc.pid)


def start(children, child):
    children.append(child)  # listed first: a Ctrl-C during the start still stops it
    child.start()


def stop_all(children, grace=STOP_GRACE_SECONDS):
    """Stop every process of every child's group: SIGTERM, then SIGKILL after `grace` seconds."""
    for child in reversed(children):
        child.terminate()
    deadline = time.monotonic() + grace
    while any(child.running() for child in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    for child in children:
        if child.running():
            log(f"{child.name} did not stop in {grace} s; killing it")
            child.kill()
    deadline = time.monotonic() + 5
    while any(child.running() for child in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    for child in children:
        if child.running():
            log(f"{child.name}: processes of group {child.proc.pid} are still there after SIGKILL")
        else:
            child.proc = None  # its group is gone; never signal that number again


def redis_answers(url, timeout=1.0):
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    # -NOAUTH still proves a Redis is there; the URL's password is used by the real client.
    return reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH")


def free_port(preferred=None):
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port")


def choose_cache(broker):
    """Where the log-in throttle counts: CACHE_URL when set, else database 1 of the broker's Redis,
    else each web process's memory (the embedded broker means there is no Redis)."""
    if "CACHE_URL" in os.environ:
        return os.environ["CACHE_URL"]
    if broker.startswith(("redis://", "rediss://")):
        return urlunparse(urlparse(broker)._replace(path="/1"))
    log("cache: no Redis, so the log-in throttle counts per process")
    return ""


def choose_broker(children):
    configured = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    if not configured.startswith(("redis://", "rediss://")):
        log(f"broker: {configured} (as configured)")
        return configured
    if redis_answers(configured):
        log(f"broker: Redis at {configured}")
        return configured
    # REDIS_SERVER_BIN="" turns the private-Redis step off (and lets tests reach the fallback).
    server = os.environ.get("REDIS_SERVER_BIN", shutil.which("redis-server") or "")
    if server:
        port = free_port()
        (VAR / "redis").mkdir(parents=True, exist_ok=True)
        # Nothing on disk: a restarted private Redis comes back empty, and the periodic recovery
        # re-sends the queued jobs whose messages it lost (QUEUED_RESEND_SECONDS).
        argv = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(VAR / "redis")]  # fmt: skip
        start(children, Child("redis", argv, dict(os.environ), stdout=subprocess.DEVNULL))
        url = f"redis://127.0.0.1:{port}/0"
        for _ in range(50):
            if redis_answers(url):
                log(f"broker: no Redis answered at {configured}; started a private redis-server at {url}")
                return url
            time.sleep(0.1)
        log("broker: the private redis-server did not answer; falling back to the embedded broker")
        stop_all([children.pop()])
    log(
        f"broker: EMBEDDED filesystem broker in {VAR / 'broker'} (no Redis at {configured} and no "
        "redis-server installed). Fine for one machine; use Redis for real deployments."
    )
    return "filesystem://"


def supervise(children):
    """Restart whichever child dies, with back-off; return 1 when one keeps crashing."""
    while True:
        now = time.monotonic()
        for child in children:
            if child.restart_at is not None and now >= child.restart_at:
                child.start()
                continue
            code = child.exited()
            if code is None:
                continue
            stop_all([child])  # what it leaves behind (the worker's pool, beat) goes with it
            delay = child.backoff(now)
            if delay is None:
                log(
                    f"GIVING UP: {child.name} exited with code {code}, its {child.crashes}th crash in a "
                    f"row within {STABLE_SECONDS} s of starting; stopping the service. Its output is above."
                )
                return 1
            log(
                f"{child.name} exited with code {code}; restarting it in {delay} s "
                f"(crash {child.crashes} in a row; {FAST_CRASHES} stop the service)"
            )
            child.restart_at = now + delay
        time.sleep(0.5)


def on_signal(signum, frame):
    raise Stop(signal.Signals(signum).name)


def main():
    children = []
    env = dict(os.environ)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        env["CELERY_BROKER_URL"] = choose_broker(children)
        env["CACHE_URL"] = choose_cache(env["CELERY_BROKER_URL"])
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "1"], cwd=ROOT, env=env, check=True)
        # The shipped model, unless the operator already chose one: verdicts with no manual step.
        subprocess.run([PY, "manage.py", "install_detector", "--default"], cwd=ROOT, env=env, check=True)
        # The report signing key exists (and its public key is published) from the first start.
        subprocess.run([PY, "manage.py", "report_key"], cwd=ROOT, env=env, check=True)
        host = env.get("RUN_HOST", "127.0.0.1")
        port = free_port(int(env.get("RUN_PORT", "8000")))
        children.append(
            Child("web", [PY, "manage.py", "runserver", f"{host}:{port}", "--noreload"], env).start()
        )
        queues = ",".join(
            dict.fromkeys([env.get("CELERY_GPU_QUEUE", "gpu"), env.get("CELERY_DEFAULT_QUEUE", "celery")])
        )
        worker = [PY, "-m", "celery", "-A", "deepfake_site", "worker", "-Q", queues,
                  "-c", env.get("WORKER_CONCURRENCY", "1"), "--loglevel", "INFO",
                  "--beat", "--schedule", str(VAR / "celerybeat-schedule")]  # fmt: skip
        start(children, Child("worker", worker, env))
        # Links are fetched by a worker of their own: a download never waits behind an analysis.
        fetch_queue = env.get("CELERY_FETCH_QUEUE", "fetch")
        fetcher = [PY, "-m", "celery", "-A", "deepfake_site", "worker", "-Q", fetch_queue, "-n", "fetch@%h",
                   "-c", env.get("FETCH_CONCURRENCY", "2"), "--loglevel", "INFO"]  # fmt: skip
        start(children, Child("fetcher", fetcher, env))
        log(f"web server: http://{host}:{port}/   health: http://{host}:{port}/healthz")
        log(f"celery worker (with beat): queues {queues}; link fetcher: queue {fetch_queue}")
        log("create an admin user:      .venv/bin/python manage.py createsuperuser")
        log("install another detector:  .venv/bin/python manage.py install_detector PATH.pt --activate")
        log("press Ctrl-C to stop everything")
        return supervise(children)
    except Stop as stop:
        log(f"{stop}: stopping")
        return 0
    except subprocess.CalledProcessError as exc:
        log(f"{' '.join(exc.cmd[1:3])} failed with code {exc.returncode}; stopping")
        return 1
    finally:
        # A second Ctrl-C must not cut the stopping short and leave children behind.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        stop_all(children)
        log("stopped")


if __name__ == "__main__":
    sys.exit(main())
