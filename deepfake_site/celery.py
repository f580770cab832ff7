import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deepfake_site.settings")

app = Celery("deepfake_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def apply_time_limits(sender=None, **kwargs):
    """Give every task this worker's limits.

    Messages carry no limits (the web process sets none), so the worker's own configuration
    decides: a GPU host and a CPU host can allow different times for the same job.
    """
    from django.conf import settings

    sender.app.conf.task_time_limit = settings.TASK_HARD_TIME_LIMIT
    sender.app.conf.task_soft_time_limit = settings.TASK_SOFT_TIME_LIMIT
    for task in sender.app.tasks.values():
        task.time_limit = settings.TASK_HARD_TIME_LIMIT
        task.soft_time_limit = settings.TASK_SOFT_TIME_LIMIT
