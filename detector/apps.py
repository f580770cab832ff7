from django.apps import AppConfig


class DetectorConfig(AppConfig):
    name = "detector"
    verbose_name = "Deepfake detector"

    def ready(self):
        from . import (
            checks,  # noqa: F401  (registers system checks)
            tasks,  # noqa: F401  (registers the Celery tasks that services sends by name)
        )
