"""manage.py verify_report FILE: is this report (PDF or JSON) signed by this service, unaltered?

Prints the answer; exits 0 only for a valid report, so scripts can rely on it.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from detector.reports import signing

LABELS = {
    signing.VALID: "VALID",
    signing.ALTERED: "ALTERED",
    signing.UNKNOWN_KEY: "SIGNED BY ANOTHER KEY",
    signing.TRUNCATED: "TRUNCATED",
    signing.NOT_A_REPORT: "NOT A REPORT",
}


class Command(BaseCommand):
    help = "Check a report file (PDF or JSON) against this service's public keys."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the report, PDF or JSON")

    def handle(self, *args, **options):
        path = Path(options["file"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
        answer = signing.verify_bytes(data)
        line = f"{LABELS[answer.outcome]}: {answer.message}"
        if not answer.valid:
            raise CommandError(line)
        self.stdout.write(line)
        report = answer.report
        analysis = report.get("analysis") or {}
        if analysis:
            self.stdout.write(f"verdict {analysis.get('verdict')}, p_fake {analysis.get('fake_probability')}")
        else:
            self.stdout.write("analysis failed: " + str((report.get("failure") or {}).get("message")))
        self.stdout.write(f"video SHA-256 {(report.get('video') or {}).get('sha256')}")
        self.stdout.write(f"generated {report.get('generated_at')}")
