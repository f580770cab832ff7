import socket

from celery import shared_task
from django.utils import timezone

from .models import Ping


@shared_task(name="detector.tasks.ping")
def ping(token):
    """Trivial job for the queue smoke test: proves a worker reaches the database."""
    Ping.objects.filter(token=token).update(handled_by=f"{socket.gethostname()}", handled_at=timezone.now())
