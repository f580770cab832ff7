"""manage.py report_key: the key that signs reports, created now when there is none.

`make run` calls it at start, so a new service has its key (and its published public key) before
the first report is asked for; a deployment runs it once after `migrate`.
"""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from detector.reports import signing


class Command(BaseCommand):
    help = "Show the report signing key's id and public key, creating the key on first use."

    def handle(self, *args, **options):
        try:
            key = signing.current_key()
        except (ImproperlyConfigured, OSError) as exc:
            raise CommandError(f"no report signing key: {exc}") from None
        self.stdout.write(f"report signing key {key.key_id} (Ed25519, public key {key.public_key})")
