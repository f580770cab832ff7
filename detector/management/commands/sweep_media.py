"""manage.py sweep_media: remove files under the submissions' folders that no row references."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from detector.services import sweep_orphan_media


class Command(BaseCommand):
    help = (
        "Delete files under media/submissions/ that no submission, result or frame row references "
        "(what a crash leaves behind, e.g. the crops of an attempt killed while saving), once older "
        "than the grace period. Beat runs it every hour."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--grace-seconds",
            type=int,
            default=None,
            metavar="SECONDS",
            help="keep files younger than this (default: MEDIA_ORPHAN_GRACE_SECONDS); a running job's "
            "images are unreferenced until it saves, so a shorter grace may delete them",
        )
        parser.add_argument("--dry-run", action="store_true", help="only list what would be deleted")

    def handle(self, *args, **options):
        grace = options["grace_seconds"]
        grace = settings.MEDIA_ORPHAN_GRACE_SECONDS if grace is None else grace
        if grace < 0:
            raise CommandError("--grace-seconds must be 0 or more")
        names = sweep_orphan_media(grace, dry_run=options["dry_run"])
        for name in names:
            self.stdout.write(name)
        verb = "would delete" if options["dry_run"] else "deleted"
        self.stdout.write(f"{verb} {len(names)} unreferenced files older than {grace} seconds")
