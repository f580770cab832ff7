"""GET /healthz: reachability of the database and the broker."""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

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


@never_cache
@require_GET
def healthz(request):
    db_up, db_error = database_ok()
    broker_up, broker_error = broker_ok()
    body = {
        "status": "ok" if db_up and broker_up else "degraded",
        "database": {"ok": db_up},
        "broker": {"ok": broker_up, "transport": celery_app.connection_for_write().transport_cls},
    }
    # Errors can carry host names; only staff see them.
    if request.user.is_authenticated and request.user.is_staff:
        body["database"]["error"] = db_error
        body["broker"]["error"] = broker_error
    return JsonResponse(body, status=200 if db_up and broker_up else 503)
