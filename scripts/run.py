"""Run the whole service: a broker, migrations, the web server and a Celery worker.

Broker: the configured Redis when it answers; else a private redis-server on a free port
when the binary exists; else kombu's filesystem transport (an embedded broker), so a
machine with no Redis still runs end to end. Ctrl-C stops everything it started.
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


def log(message):
    print(f"[run] {message}", flush=True)


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
        proc = subprocess.Popen(
            [
                server,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(VAR / "redis"),
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        children.append(("redis", proc))
        url = f"redis://127.0.0.1:{port}/0"
        for _ in range(50):
            if redis_answers(url):
                log(f"broker: no Redis answered at {configured}; started a private redis-server at {url}")
                return url
            time.sleep(0.1)
        log("broker: the private redis-server did not answer; falling back to the embedded broker")
    log(
        f"broker: EMBEDDED filesystem broker in {VAR / 'broker'} (no Redis at {configured} and no "
        "redis-server installed). Fine for one machine; use Redis for real deployments."
    )
    return "filesystem://"


def stop(children):
    for _name, proc in reversed(children):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 15
    for name, proc in reversed(children):
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log(f"{name} did not stop in time; killing it")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    log("stopped")


def main():
    children = []
    env = dict(os.environ)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        env["CELERY_BROKER_URL"] = choose_broker(children)
        env["CACHE_URL"] = choose_cache(env["CELERY_BROKER_URL"])
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "1"], cwd=ROOT, env=env, check=True)
        # The shipped model, unless the operator already chose one: verdicts with no manual step.
        subprocess.run([PY, "manage.py", "install_detector", "--default"], cwd=ROOT, env=env, check=True)
        host = env.get("RUN_HOST", "127.0.0.1")
        port = free_port(int(env.get("RUN_PORT", "8000")))
        web = subprocess.Popen(
            [PY, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        children.append(("web", web))
        queues = ",".join(
            dict.fromkeys([env.get("CELERY_GPU_QUEUE", "gpu"), env.get("CELERY_DEFAULT_QUEUE", "celery")])
        )
        worker = subprocess.Popen(
            [
                PY,
                "-m",
                "celery",
                "-A",
                "deepfake_site",
                "worker",
                "-Q",
                queues,
                "-c",
                env.get("WORKER_CONCURRENCY", "1"),
                "--loglevel",
                "INFO",
                "--beat",
                "--schedule",
                str(VAR / "celerybeat-schedule"),
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        children.append(("worker", worker))
        log(f"web server: http://{host}:{port}/   (pid {web.pid}); health: http://{host}:{port}/healthz")
        log(f"celery worker: pid {worker.pid}, queues {queues}")
        log("create an admin user:      .venv/bin/python manage.py createsuperuser")
        log("install another detector:  .venv/bin/python manage.py install_detector PATH.pt --activate")
        log("press Ctrl-C to stop everything")
        while True:
            for name, proc in children:
                if proc.poll() is not None:
                    log(f"{name} exited with code {proc.returncode}; stopping the rest")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        log("Ctrl-C: stopping")
        return 0
    finally:
        stop(children)


if __name__ == "__main__":
    sys.exit(main())
