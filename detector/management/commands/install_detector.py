"""manage.py install_detector PATH [--activate]: validate a checkpoint and add it to the model store.

manage.py install_detector --default: the model shipped with the project (DETECTOR_DEFAULT_CHECKPOINT),
installed and activated only when no model is active, so an operator's choice is never replaced.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from detector.models import DetectorModel
from detector.registry import activate_detector, add_test_scores, install_checkpoint
from ml_core.model.checkpoints import file_sha256
from ml_core.model.names import default_model_name
from ml_core.model.test_figures import outdated, read_beside, summary


class Command(BaseCommand):
    help = (
        "Validate a detector checkpoint (our format or a reference app .pt), copy it into the model "
        "store under its SHA-256, and record its config and metrics."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="checkpoint file (.pt)")
        parser.add_argument(
            "--default",
            action="store_true",
            help="the shipped model (DETECTOR_DEFAULT_CHECKPOINT), activated only when none is active",
        )
        parser.add_argument("--activate", action="store_true", help="make it the active model")
        parser.add_argument("--name", help="display name (default: from the checkpoint)")
        parser.add_argument("--notes", default="", help="free text shown in the admin")

    def handle(self, *args, **options):
        from ml_core.errors import CheckpointError

        if options["default"]:
            return self._install_default(options)
        if not options["path"]:
            raise CommandError("give a checkpoint file, or --default for the shipped model")
        try:
            detector = install_checkpoint(options["path"], name=options["name"], notes=options["notes"])
        except CheckpointError as exc:
            raise CommandError(str(exc)) from exc
        if options["activate"]:
            activate_detector(detector)
        write = self.stdout.write
        write(f"installed {detector.name}")
        write(f"  sha256:          {detector.sha256}")
        write(f"  stored as:       {detector.checkpoint.name} ({detector.size_bytes} bytes)")
        write(f"  kind:            {detector.metrics.get('kind', '?')}")
        config = detector.config
        write(f"  backbone:        {config.get('backbone')}, temporal {config.get('temporal')}")
        write(f"  sequence length: {detector.sequence_length}")
        metrics = {k: v for k, v in detector.metrics.items() if k not in ("kind", "test_scores")}
        write(f"  metrics:         {metrics or 'none recorded'}")
        write(f"  test figures:    {_test_figures_line(detector.metrics.get('test_scores'))}")
        write(f"  active:          {'yes' if detector.is_active else 'no (use --activate)'}")

    def _install_default(self, options):
        from ml_core.errors import CheckpointError

        path = settings.DETECTOR_DEFAULT_CHECKPOINT
        if not path:
            self.stdout.write("no default detector configured (DETECTOR_DEFAULT_CHECKPOINT is empty)")
            return
        if not Path(path).is_file():
            raise CommandError(f"DETECTOR_DEFAULT_CHECKPOINT: {path} does not exist")
        active = DetectorModel.objects.filter(is_active=True).first()
        if active is not None:
            self.stdout.write(f"active detector: {active.name} (the default is not installed over it)")
            if active.sha256 == file_sha256(path) and outdated(active.metrics.get("test_scores")):
                # A database from before test figures were recorded catches up on the next start.
                if add_test_scores(active, read_beside(path, active.sha256)):
                    self.stdout.write("  added its test figures (from the metrics.json beside it)")
            return
        try:
            detector = install_checkpoint(
                path,
                name=options["name"] or default_model_name(path),
                notes=options["notes"] or "shipped default",
            )
        except CheckpointError as exc:
            raise CommandError(str(exc)) from exc
        activate_detector(detector)
        self.stdout.write(
            f"installed and activated the default detector {detector.name} ({detector.sha256[:12]})"
        )


def _test_figures_line(record):
    if not record:
        return "none (no metrics.json with test scores beside the file)"
    return summary(record)
