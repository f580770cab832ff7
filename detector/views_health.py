from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from deepfake_site.celery import app as celery_app

from .health import broker_ok, database_ok


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
