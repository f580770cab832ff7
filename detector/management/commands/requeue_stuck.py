"""manage.py requeue_stuck: re-send jobs that were never sent, got lost, or lost their worker."""

from django.core.management.base import BaseCommand

from detector.worker.recovery import requeue_stuck


class Command(BaseCommand):
    help = (
        "Re-enqueue submissions stuck in queued (never sent because the broker was down, their "
        "message lost by the broker, or sent too long ago) or running on a worker that died. "
        "Safe to run at any time."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=None,
            metavar="SECONDS",
            help="re-send queued jobs sent longer ago than this (default: STUCK_AFTER_SECONDS)",
        )

    def handle(self, *args, **options):
        counts = requeue_stuck(older_than=options["older_than"])
        total = sum(counts.values()) - counts["gave_up"]
        self.stdout.write(
            f"re-enqueued {total}: {counts['never_sent']} never sent, "
            f"{counts['lost_queued']} whose message the broker lost, "
            f"{counts['stale_queued']} queued too long, "
            f"{counts['waiting_model']} waiting for a model, {counts['dead_worker']} from dead workers; "
            f"{counts['gave_up']} marked failed after too many attempts"
        )
