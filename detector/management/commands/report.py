"""manage.py report SUBMISSION_UUID DIR: write a finished submission's signed report (PDF and JSON)."""

import uuid

from django.core.management.base import BaseCommand, CommandError

from detector.models import Submission
from detector.reports.build import write_report_files
from detector.reports.content import ReportNotReady


class Command(BaseCommand):
    help = "Write the signed report (report-<id>.pdf and .json) of a done or failed submission into DIR."

    def add_arguments(self, parser):
        parser.add_argument("submission", help="the submission's UUID (as in its page's address)")
        parser.add_argument("folder", metavar="DIR", help="folder to write the two files into (created)")

    def handle(self, *args, **options):
        try:
            public_id = uuid.UUID(options["submission"])
        except ValueError:
            raise CommandError(f"{options['submission']!r} is not a submission UUID") from None
        submission = Submission.objects.filter(public_id=public_id).first()
        if submission is None:
            raise CommandError(f"no submission {public_id}")
        try:
            paths = write_report_files(submission, options["folder"])
        except ReportNotReady as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"cannot write into {options['folder']}: {exc}") from None
        for path in paths:
            self.stdout.write(str(path))
