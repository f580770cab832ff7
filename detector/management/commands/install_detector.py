"""manage.py install_detector PATH [--activate]: validate a checkpoint and add it to the model store."""

from django.core.management.base import BaseCommand, CommandError

from detector.registry import activate_detector, install_checkpoint


class Command(BaseCommand):
    help = (
        "Validate a detector checkpoint (our format or a reference app .pt), copy it into the model "
        "store under its SHA-256, and record its config and metrics."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="checkpoint file (.pt)")
        parser.add_argument("--activate", action="store_true", help="make it the active model")
        parser.add_argument("--name", help="display name (default: from the checkpoint)")
        parser.add_argument("--notes", default="", help="free text shown in the admin")

    def handle(self, *args, **options):
        from ml_core.errors import CheckpointError

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
        metrics = {k: v for k, v in detector.metrics.items() if k != "kind"}
        write(f"  metrics:         {metrics or 'none recorded'}")
        write(f"  active:          {'yes' if detector.is_active else 'no (use --activate)'}")
