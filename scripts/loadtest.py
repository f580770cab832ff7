#!/usr/bin/env python
"""Load test: N users log in, upload small clips through the upload page and poll their status.

Everything runs on loopback and is torn down at the end: a private redis-server on a free port,
a private database (a SQLite file, or a database created and dropped on the local PostgreSQL),
gunicorn with production settings (DJANGO_ENV=production, SECURE_SSL_REDIRECT=false), and
celery workers on private queue names with a tiny random-weight model. Bounded in time and
count. Prints a table; exits non-zero on any error, lost or duplicated submission.

    .venv/bin/python scripts/loadtest.py --users 20 --workers 2
    .venv/bin/python scripts/loadtest.py --users 5 --database sqlite   # the CI-sized run
"""

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlparse

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_ADMIN_URL = os.environ.get("LOADTEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def port_answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5):
            return True
    except OSError:
        return False


# --- the HTTP client: one per simulated user -----------------------------------------------------


class Browser:
    """Cookies, CSRF and timing on top of http.client (loopback, one connection per request)."""

    def __init__(self, port, stats):
        self.port, self.stats, self.cookies = port, stats, {}

    def request(self, kind, method, path, body=None, headers=None):
        headers = dict(headers or {})
        headers["Host"] = "127.0.0.1"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        started = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except OSError as exc:
            self.stats.error(kind, f"{method} {path}: {exc!r}")
            raise
        finally:
            conn.close()
        self.stats.latency(kind, time.perf_counter() - started)
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, response.headers, data

    def csrf_from(self, html):
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        if not match:
            raise RuntimeError("no CSRF token in the page")
        return match.group(1).decode()

    def login(self, username, password):
        status, _, page = self.request("login", "GET", "/accounts/login/")
        body = urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": self.csrf_from(page)}
        )
        status, headers, _ = self.request(
            "login", "POST", "/accounts/login/", body,
            {"Content-Type": "application/x-www-form-urlencoded", "Referer": "http://127.0.0.1/accounts/login/"},
        )  # fmt: skip
        if status != 302:
            raise RuntimeError(f"login of {username} answered {status}")

    def upload(self, video_bytes, frames=10):
        status, _, page = self.request("upload_page", "GET", "/submissions/new/")
        if status != 200:
            raise RuntimeError(f"upload page answered {status}")
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n'
            f"{self.csrf_from(page)}\r\n",
            f'--{boundary}\r\nContent-Disposition: form-data; name="frames"\r\n\r\n{frames}\r\n',
            f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="clip.mp4"\r\n'
            "Content-Type: video/mp4\r\n\r\n",
        ]
        body = "".join(parts).encode() + video_bytes + f"\r\n--{boundary}--\r\n".encode()
        status, headers, data = self.request(
            "upload", "POST", "/submissions/new/", body,
            {"Content-Type": f"multipart/form-data; boundary={boundary}", "Referer": "http://127.0.0.1/submissions/new/"},
        )  # fmt: skip
        if status != 302:
            raise RuntimeError(f"upload answered {status}: {data[:300]!r}")
        location = urlparse(headers["Location"]).path
        return location.rstrip("/").rsplit("/", 1)[-1]

    def status(self, public_id):
        status, _, data = self.request("status_poll", "GET", f"/submissions/{public_id}/status.json")
        if status != 200:
            raise RuntimeError(f"status answered {status}")
        return json.loads(data)

    def page(self, kind, path):
        status, _, _ = self.request(kind, "GET", path)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}")


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    uploads: list = field(default_factory=list)  # (user, public_id)
    outcomes: dict = field(default_factory=dict)  # public_id -> final status dict

    def latency(self, kind, seconds):
        with self.lock:
            self.latencies.setdefault(kind, []).append(seconds)

    def error(self, kind, message):
        with self.lock:
            self.errors.append(f"{kind}: {message}")


def status_of(data):
    # Tolerate either {"status": "done"} or {"submission": {"status": ...}}.
    if "status" in data:
        return data["status"]
    return data.get("submission", {}).get("status")


def user_session(port, username, password, video, uploads, stats, deadline, poll_interval):
    browser = Browser(port, stats)
    try:
        browser.login(username, password)
        mine = []
        for _ in range(uploads):
            public_id = browser.upload(video)
            mine.append(public_id)
            with stats.lock:
                stats.uploads.append((username, public_id))
        browser.page("list_page", "/submissions/")
        pending = set(mine)
        while pending and time.monotonic() < deadline:
            for public_id in list(pending):
                data = browser.status(public_id)
                if status_of(data) in ("done", "failed"):
                    pending.discard(public_id)
                    with stats.lock:
                        stats.outcomes[public_id] = data
            time.sleep(poll_interval)
        for public_id in pending:
            stats.error("timeout", f"{username}: {public_id} not finished before the deadline")
        for public_id in mine:
            browser.page("detail_page", f"/submissions/{public_id}/")
    except Exception as exc:  # any failure of a simulated user is a load-test error
        stats.error("user", f"{username}: {exc!r}")


# --- the service under test --------------------------------------------------------------------------


class Service:
    def __init__(self, args, workdir):
        self.args, self.workdir = args, Path(workdir)
        self.procs, self.logs = [], {}
        self.redis_port, self.http_port = free_port(), free_port()
        tag = uuid.uuid4().hex[:8]
        self.db_name = f"loadtest_{tag}"
        self.database = args.database
        if self.database == "auto":
            self.database = "postgres" if pg_available() else "sqlite"
        if self.database == "postgres":
            admin = urlparse(PG_ADMIN_URL)
            self.database_url = admin._replace(path=f"/{self.db_name}").geturl()
        else:
            self.database_url = f"sqlite:///{self.workdir / 'db.sqlite3'}"
        self.env = dict(os.environ) | {
            "DJANGO_SETTINGS_MODULE": "deepfake_site.settings",
            "DJANGO_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": self.database_url,
            "MEDIA_ROOT": str(self.workdir / "media"),
            "STATIC_ROOT": str(self.workdir / "static"),
            "VAR_DIR": str(self.workdir / "var"),
            "DETECTOR_CACHE_DIR": str(self.workdir / "model-cache"),
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "CELERY_GPU_QUEUE": f"loadtest-gpu-{tag}",
            "CELERY_DEFAULT_QUEUE": f"loadtest-default-{tag}",
            "DETECTOR_EXPLAIN": "false",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }

    def spawn(self, name, cmd):
        log = open(self.workdir / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        self.procs.append((name, proc, log))
        return proc

    def manage(self, *args):
        result = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def start(self, users, password):
        self.spawn("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(self.workdir)])  # fmt: skip
        wait_until(lambda: port_answers(self.redis_port), 15, "redis-server")
        if self.database == "postgres":
            pg_admin(f'CREATE DATABASE "{self.db_name}"')
        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput")
        checkpoint = self.workdir / "tiny.pt"
        setup = (
            "import sys; sys.path.insert(0, '.');\n"
            "from tests.helpers.checkpoints import make_tiny_checkpoint\n"
            "from detector.registry import install_checkpoint, activate_detector\n"
            "from detector.models import User\n"
            f"activate_detector(install_checkpoint(make_tiny_checkpoint({str(checkpoint)!r})))\n"
            f"for name in {users!r}:\n"
            f"    User.objects.create_user(name, password={password!r})\n"
        )
        self.manage("shell", "-c", setup)
        queues = f"{self.env['CELERY_GPU_QUEUE']},{self.env['CELERY_DEFAULT_QUEUE']}"
        for i in range(self.args.workers):
            self.spawn(f"worker-{i}", [PYTHON, "-m", "celery", "-A", "deepfake_site", "worker", "-Q", queues,
                                       "-c", "1", "-n", f"loadtest-{i}-{uuid.uuid4().hex[:4]}@%h",
                                       "--without-gossip", "--without-mingle", "--without-heartbeat",
                                       "--loglevel", "WARNING"])  # fmt: skip
        bind = f"127.0.0.1:{self.http_port}"
        self.spawn("gunicorn", [PYTHON, "-m", "gunicorn", "deepfake_site.wsgi:application", "--bind", bind,
                                "--workers", str(self.args.web_workers), "--threads", str(self.args.threads),
                                "--worker-class", "gthread", "--timeout", "120"])  # fmt: skip
        wait_until(lambda: port_answers(self.http_port), 60, "gunicorn")

    def query(self, sql):
        """Rows from the service's database (read-only checks after the run)."""
        code = (
            "import json; from django.db import connection\n"
            "with connection.cursor() as c:\n"
            f"    c.execute({sql!r}); print(json.dumps(c.fetchall(), default=str))\n"
        )
        return json.loads(self.manage("shell", "-c", code).strip().splitlines()[-1])

    def stop(self):
        for _name, proc, log in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            log.close()
        if self.database == "postgres":
            try:
                pg_admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            except Exception as exc:  # leave a note, never hide the run's own result
                print(f"warning: could not drop {self.db_name}: {exc!r}", file=sys.stderr)


def pg_available():
    try:
        pg_admin("SELECT 1")
        return True
    except Exception:
        return False


def pg_admin(sql):
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(sql)


# --- the run ----------------------------------------------------------------------------------------------


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def make_clip(path):
    sys.path.insert(0, str(ROOT))
    from tests.helpers.videos import make_face_video

    return make_face_video(path, count=12, size=(160, 120), face_size=100).read_bytes()


def run(users=20, uploads_per_user=1, workers=2, web_workers=2, threads=8, database="auto",
        time_limit=600.0, poll_interval=0.5, keep=False):  # fmt: skip
    """Run one load test; return a dict of figures (see `report`)."""
    args = argparse.Namespace(workers=workers, web_workers=web_workers, threads=threads, database=database)
    workdir = Path(tempfile.mkdtemp(prefix="loadtest-"))
    service = Service(args, workdir)
    names = [f"load{i:02d}" for i in range(users)]
    password = secrets.token_urlsafe(12)
    stats = Stats()
    try:
        setup_started = time.monotonic()
        service.start(names, password)
        video = make_clip(workdir / "clip.mp4")
        setup_seconds = time.monotonic() - setup_started
        started = time.monotonic()
        deadline = started + time_limit
        threads_ = [
            threading.Thread(
                target=user_session,
                args=(
                    service.http_port,
                    name,
                    password,
                    video,
                    uploads_per_user,
                    stats,
                    deadline,
                    poll_interval,
                ),
            )
            for name in names
        ]
        for thread in threads_:
            thread.start()
        for thread in threads_:
            thread.join(timeout=max(1.0, deadline - time.monotonic() + 30))
        elapsed = time.monotonic() - started
        rows = service.query(
            "SELECT s.public_id, s.status, s.attempts, "
            "(SELECT COUNT(*) FROM detector_result r WHERE r.submission_id = s.id) "
            "FROM detector_submission s"
        )
    finally:
        service.stop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    sent = [public_id for _, public_id in stats.uploads]
    in_db = {str(r[0]).replace("-", ""): r for r in rows}
    lost = [p for p in sent if p.replace("-", "") not in in_db]
    duplicated = [r[0] for r in rows if r[3] > 1] + (["(extra rows)"] if len(rows) > len(set(sent)) else [])
    failed = [r[0] for r in rows if r[1] != "done"]
    return {
        "database": service.database,
        "users": users,
        "uploads_expected": users * uploads_per_user,
        "uploads_sent": len(sent),
        "rows": len(rows),
        "done": sum(1 for r in rows if r[1] == "done"),
        "not_done": failed,
        "lost": lost,
        "duplicated": duplicated,
        "errors": stats.errors,
        "latencies": stats.latencies,
        "elapsed": elapsed,
        "setup_seconds": setup_seconds,
        "workers": workers,
        "web": f"gunicorn gthread {web_workers}x{threads}",
        "workdir": str(workdir) if keep else "",
    }


def report(figures):
    lines = [
        f"database: {figures['database']}   web: {figures['web']}   celery workers: {figures['workers']}   "
        f"users: {figures['users']}",
        f"uploads: {figures['uploads_sent']}/{figures['uploads_expected']} sent, {figures['rows']} rows, "
        f"{figures['done']} done; lost {len(figures['lost'])}, duplicated {len(figures['duplicated'])}, "
        f"not done {len(figures['not_done'])}, errors {len(figures['errors'])}",
        f"wall time {figures['elapsed']:.1f} s (setup {figures['setup_seconds']:.1f} s); "
        f"throughput {figures['done'] / max(figures['elapsed'], 1e-9) * 60:.1f} clips/min",
        "",
        f"{'request':<14}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}",
    ]
    for kind in ("login", "upload_page", "upload", "status_poll", "list_page", "detail_page"):
        values = figures["latencies"].get(kind, [])
        if not values:
            continue
        ms = [v * 1000 for v in values]
        lines.append(
            f"{kind:<14}{len(ms):>7}{statistics.median(ms):>9.1f}{percentile(ms, 95):>9.1f}"
            f"{percentile(ms, 99):>9.1f}{max(ms):>9.1f}"
        )
    for error in figures["errors"][:20]:
        lines.append(f"error: {error}")
    return "\n".join(lines)


def ok(figures):
    return (
        not figures["errors"]
        and not figures["lost"]
        and not figures["duplicated"]
        and not figures["not_done"]
        and figures["uploads_sent"] == figures["uploads_expected"]
    )


def get_args_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--uploads-per-user", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="celery worker processes (concurrency 1 each)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument("--database", choices=["auto", "sqlite", "postgres"], default="auto")
    parser.add_argument(
        "--time-limit", type=float, default=600.0, help="seconds before unfinished jobs count as errors"
    )
    parser.add_argument("--poll-interval", type=float, default=0.5)
    parser.add_argument(
        "--keep", action="store_true", help="keep the work folder (logs, media) for inspection"
    )
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    figures = run(
        users=args.users, uploads_per_user=args.uploads_per_user, workers=args.workers,
        web_workers=args.web_workers, threads=args.threads, database=args.database,
        time_limit=args.time_limit, poll_interval=args.poll_interval, keep=args.keep,
    )  # fmt: skip
    print(report(figures))
    if figures["workdir"]:
        print(f"work folder kept: {figures['workdir']}")
    return 0 if ok(figures) else 1


if __name__ == "__main__":
    sys.exit(main())
