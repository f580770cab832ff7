from django.apps import AppConfig


class DetectorConfig(AppConfig):
    name = "detector"
    verbose_name = "Deepfake detector"

    def ready(self):
        from . import checks  # noqa: F401  (registers system checks)
