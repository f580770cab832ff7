"""manage.py rotate_report_key: sign new reports with a new key; old reports stay verifiable.

The old public key stays listed (public_keys.json, /reports/keys.json) with the date it stopped.
A key given through REPORT_SIGNING_KEY is rotated by setting a new one there instead.
"""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from detector.reports import signing


class Command(BaseCommand):
    help = "Replace the report signing key; the old public key stays published with its dates."

    def handle(self, *args, **options):
        old = signing.current_key()
        try:
            new = signing.rotate_key()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"report key {old.key_id} retired; new reports are signed with {new.key_id}")
