"""manage.py purge_media --older-than DAYS: delete old videos and images, keep the verdicts."""

from django.core.management.base import BaseCommand, CommandError

from detector.services import purge_media


class Command(BaseCommand):
    help = (
        "Delete the uploaded videos, face crops and overlays of finished submissions older than DAYS "
        "(through the storage API). Submissions, verdicts and per-frame scores are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, required=True, metavar="DAYS")
        parser.add_argument("--dry-run", action="store_true", help="only count what would be deleted")

    def handle(self, *args, **options):
        days = options["older_than"]
        if days < 0:
            raise CommandError("--older-than must be 0 or more days")
        submissions, files = purge_media(days, dry_run=options["dry_run"])
        verb = "would purge" if options["dry_run"] else "purged"
        self.stdout.write(f"{verb} {submissions} submissions ({files} files) older than {days} days")
