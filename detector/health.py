"""Reachability probes for the health endpoint and the run script."""

from django.db import connection

from deepfake_site.celery import app as celery_app


def database_ok():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True, ""
    except Exception as exc:  # any driver error means "down" here
        return False, str(exc)


def broker_ok(timeout=2.0):
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
            # Opening a channel proves the transport really answers (Redis PING / folder exists).
            _ = conn.default_channel
        return True, ""
    except Exception as exc:
        return False, str(exc)
