"""Benchmark and look at reports: analyse real clips with the shipped model, build their signed
reports, and time building one (content + signature, then the PDF).

Runs each analysis exactly as a worker does, on a throwaway SQLite database, media folder and
report key, then writes report-<id>.pdf / .json and page PNGs (with pdftoppm, when installed)
into --out, so the first pages can be looked at.

    .venv/bin/python scripts/bench_report.py --out /tmp/reports                 # a FAKE and a REAL clip
    .venv/bin/python scripts/bench_report.py --out /tmp/reports clip1.mp4 clip2.mp4 --frames 20
"""

import argparse
import shutil
import statistics
import subprocess  # nosec B404: fixed pdftoppm arguments
import tempfile
import time
from pathlib import Path

from throwaway_site import SHARED, setup_django  # noqa: E402  (scripts/ is on sys.path)

# The shipped model's highest-scoring test fake (DFDC) and a real clip it scores low.
DEFAULT_VIDEOS = [
    SHARED / "training/crops_fake/dfdc_part0_facecrop_0_acryukkddn_0_0.mp4",
    SHARED / "videos/real/hdtf_WDA_EdMarkey0_000.mp4",
]


def get_args_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("videos", nargs="*", type=Path, default=DEFAULT_VIDEOS, help="clips to analyse")
    parser.add_argument("--out", type=Path, required=True, help="folder for the reports and page images")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5, help="report builds timed per clip")
    return parser


def main(args):
    workdir = Path(tempfile.mkdtemp(prefix="bench-report-"))
    setup_django(workdir, REPORT_SIGNING_KEY_DIR=str(workdir / "report-keys"))
    from django.core.management import call_command

    call_command("install_detector", "--default", verbosity=0)
    from unittest import mock

    from detector.models import FrameImage, User
    from detector.reports import signing
    from detector.reports.build import build_report, stored_images
    from detector.reports.content import build_content
    from detector.reports.pdf import render_pdf
    from detector.tasks import analyze_submission
    from tests.detector._worker_support import stored_submission

    owner = User.objects.create_user("bench")
    args.out.mkdir(parents=True, exist_ok=True)
    with mock.patch("detector.services.dispatch_on_commit"):
        for clip in args.videos:
            submission = stored_submission(owner, clip, frames=args.frames, enqueue=True)
            analyze_submission.apply(args=[submission.pk]).get()
            submission.refresh_from_db()
            result = submission.current_result
            if result is None:
                print(f"{clip.name}: analysis failed: {submission.error_message}")
                continue
            crops = FrameImage.objects.filter(result=result).count()
            content_times, pdf_times = [], []
            for _ in range(args.repeats):
                started = time.perf_counter()
                document = signing.sign(build_content(submission))
                content_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                pdf = render_pdf(document, stored_images(document), signing.document_bytes(document))
                pdf_times.append(time.perf_counter() - started)
            report = build_report(submission)
            stem = args.out / f"{result.verdict}-{clip.stem}"
            stem.with_suffix(".pdf").write_bytes(pdf)
            stem.with_suffix(".json").write_bytes(report.json_bytes)
            if shutil.which("pdftoppm"):
                subprocess.run(
                    ["pdftoppm", "-r", "80", "-png", str(stem.with_suffix(".pdf")), str(stem)], check=True
                )  # nosec B603 B607
            total = [c + p for c, p in zip(content_times, pdf_times, strict=True)]
            print(
                f"{result.verdict:9} p_fake={result.fake_probability:.3f} {crops} crops  {clip.name}\n"
                f"  report build (median of {args.repeats}): "
                f"content+signature {statistics.median(content_times):.3f} s, "
                f"PDF {statistics.median(pdf_times):.3f} s, total {statistics.median(total):.3f} s "
                f"({len(pdf) / 1024:.0f} KB)"
            )
    print(f"reports and page images: {args.out}; work folder (delete when done): {workdir}")


if __name__ == "__main__":
    main(get_args_parser().parse_args())
