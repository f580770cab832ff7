"""manage.py analyze VIDEO|URL... --user NAME [--frames N] [--wait]: submit files, folders or links
for analysis.

Each file gets the upload page's checks and is copied into media storage; the user's file stays.
A link (anything with "://") is fetched by the fetch job (detector.links), as from the page.
"""

import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from detector.links.errors import RateLimited
from detector.links.submit import create_link_submission
from detector.media_files import StorageError
from detector.models import FINISHED, Submission
from detector.reports.build import write_report_files
from detector.uploads import store_video
from ml_core.constants import DEFAULT_FRAMES, MAX_FRAMES, MIN_FRAMES, VIDEO_EXTENSIONS


def video_files(paths):
    files = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        elif path.is_file():
            if path.suffix.lower() not in VIDEO_EXTENSIONS:
                raise CommandError(f"{path}: not a video file name ({', '.join(VIDEO_EXTENSIONS)})")
            files.append(path)
        else:
            raise CommandError(f"{path}: no such file or folder")
    if not files:
        raise CommandError("no video files found")
    return files


class Command(BaseCommand):
    help = "Create submissions from video files or folders of clips; with --wait, print each verdict."

    def add_arguments(self, parser):
        parser.add_argument("videos", nargs="+", help="video files, folders or links (http/https)")
        parser.add_argument("--user", required=True, help="username that will own the submissions")
        parser.add_argument(
            "--frames", type=int, default=DEFAULT_FRAMES, help=f"frames to sample ({MIN_FRAMES}-{MAX_FRAMES})"
        )
        parser.add_argument("--wait", action="store_true", help="wait and print each verdict as it completes")
        parser.add_argument(
            "--timeout", type=float, default=3600, help="seconds to wait in all (with --wait)"
        )
        parser.add_argument(
            "--report",
            metavar="DIR",
            help="write each finished analysis's signed report (PDF and JSON) into DIR; implies --wait",
        )

    def handle(self, *args, **options):
        frames = options["frames"]
        if not MIN_FRAMES <= frames <= MAX_FRAMES:
            raise CommandError(f"--frames must be between {MIN_FRAMES} and {MAX_FRAMES}")
        report_dir = Path(options["report"]) if options["report"] else None
        if report_dir is not None and report_dir.exists() and not report_dir.is_dir():
            raise CommandError(f"--report {report_dir}: not a folder")
        owner = get_user_model().objects.filter(username=options["user"]).first()
        if owner is None:
            raise CommandError(f"no user named {options['user']!r}")
        links = [item for item in options["videos"] if "://" in item]
        files = [item for item in options["videos"] if "://" not in item]
        paths = video_files(files) if files else []
        submissions, refused = [], []
        for link in links:
            try:
                submission = create_link_submission(owner, link, frames)
            except ValidationError as exc:
                refused.append(f"{link}: {' '.join(exc.messages)}")
                continue
            except RateLimited as exc:
                refused.append(f"{link}: {exc.message}")
                continue
            submissions.append(submission)
            self.stdout.write(f"fetching {submission.public_id} {link}")
        for path in paths:
            try:
                submission = store_video(owner, path, frames)
            except ValidationError as exc:
                refused.append(f"{path}: {' '.join(exc.messages)}")
                continue
            except StorageError as exc:  # full or read-only: the next video would fail the same way
                raise CommandError(f"{path}: {exc.message}") from exc
            submissions.append(submission)
            self.stdout.write(f"queued {submission.public_id} {path}")
        if options["wait"] or report_dir is not None:
            self.wait(submissions, options["timeout"], report_dir)
        if refused:
            raise CommandError(
                f"refused {len(refused)} of {len(paths) + len(links)} videos (nothing stored for them):\n  "
                + "\n  ".join(refused)
            )

    def wait(self, submissions, timeout, report_dir=None):
        pending = {s.pk: s for s in submissions}
        deadline = time.monotonic() + timeout
        failed = 0
        while pending and time.monotonic() < deadline:
            finished = Submission.objects.filter(pk__in=pending, status__in=FINISHED).select_related(
                "current_result"
            )
            for row in finished:
                pending.pop(row.pk)
                if row.status == Submission.Status.DONE and row.current_result:
                    result = row.current_result
                    line = f"{result.verdict:9} p_fake={result.fake_probability:.3f}"
                else:
                    failed += 1
                    line = f"FAILED    {row.error_message}"
                self.stdout.write(f"{line}  {row.original_name} ({row.public_id})")
                if report_dir is not None:
                    for path in write_report_files(row, report_dir):
                        self.stdout.write(f"  report {path}")
            if pending:
                time.sleep(0.5)
        if pending:
            raise CommandError(f"{len(pending)} submissions not finished after {timeout:.0f}s")
        if failed:
            self.stderr.write(f"{failed} of {len(submissions)} failed")
