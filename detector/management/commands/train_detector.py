"""manage.py train_detector ...: the same as `python -m ml_core.cli.train ...` (all options pass through)."""

import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Train or fine-tune a detector (python -m ml_core.cli.train). Every option after the command name is "
        "passed to ml_core.cli.train; see `manage.py train_detector --help`."
    )

    def add_arguments(self, parser):
        parser.add_argument("train_args", nargs="*", help="ml_core.cli.train options")

    def run_from_argv(self, argv):
        # Django's own parser would reject ml_core.cli.train's options: hand argv over untouched.
        from ml_core.cli import train

        parser = train.get_args_parser()
        parser.prog = f"{argv[0]} {argv[1]}"
        try:
            train.main(parser.parse_args([a for a in argv[2:] if a != "--"]))
        except SystemExit as exc:
            if exc.code in (0, None):
                return
            if not isinstance(exc.code, int):
                self.stderr.write(f"train_detector: {exc.code}")
            sys.exit(exc.code if isinstance(exc.code, int) else 1)

    def handle(self, *args, **options):
        # Reached through call_command("train_detector", train_args=[...]).
        from ml_core.cli import train

        train.main(list(options.get("train_args") or []))
