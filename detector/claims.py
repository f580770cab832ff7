"""Who holds a running job, and how to tell that holder died.

A claim token names the process that claimed the row: host, PID namespace, PID, the process's
start time (so a reused PID does not look alive) and a random nonce. A holder is gone when its
heartbeat is older than the lease (any host), or at once when it was a process on this host, in
this PID namespace, that no longer exists (a SIGKILLed pool child, an OOM kill).
"""

import os
import socket
import uuid
from datetime import timedelta

from django.conf import settings


def heartbeat_seconds():
    return settings.DETECTOR_HEARTBEAT_SECONDS


def lease():
    """A running job whose heartbeat is older than this is presumed dead."""
    return timedelta(seconds=settings.DETECTOR_LEASE_SECONDS)


def _pid_namespace():
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:").strip("[]")
    except OSError:
        return ""


def _start_time(pid):
    """The process's start time in clock ticks since boot (Linux); "" when unknown or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name (field 2) may contain spaces; fields after its ")" are fixed.
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # a killed process nobody has reaped yet
        return ""
    return fields[19]


def new_token():
    pid = os.getpid()
    return "|".join(
        [socket.gethostname(), _pid_namespace(), str(pid), _start_time(pid), uuid.uuid4().hex[:12]]
    )


def process_is_gone(token):
    """True only when we can prove the holder process no longer exists; False when unsure."""
    parts = token.split("|")
    if len(parts) != 5:
        return False
    host, namespace, pid, started, _ = parts
    if host != socket.gethostname() or not namespace or namespace != _pid_namespace() or not started:
        return False  # another machine or container: only the heartbeat can tell
    return _start_time(pid) != started


def holder_is_gone(token, heartbeat_at, now):
    if heartbeat_at is None or heartbeat_at < now - lease():
        return True
    return bool(token) and process_is_gone(token)
