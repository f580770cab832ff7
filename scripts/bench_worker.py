"""Benchmark the analysis worker: per-video overhead around ml_core, and videos per minute.

Runs `analyze_submission` exactly as one worker pool process does (claim, copy from storage,
ml_core, images through the storage API, one transaction), on a throwaway SQLite database and
media folder, one clip after another. Overhead = the job's wall time minus the time spent inside
ml_core (model load, face extraction, classification, Grad-CAM).

    .venv/bin/python scripts/bench_worker.py --tiny                 # tiny random-weight model
    .venv/bin/python scripts/bench_worker.py --reference --limit 20 # full-size ResNeXt50, reference format
    .venv/bin/python scripts/bench_worker.py --checkpoint model.pt --videos ../shared/videos
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from throwaway_site import SHARED, setup_django  # noqa: E402  (scripts/ is on sys.path)


def get_args_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--tiny", action="store_true", help="tiny random-weight checkpoint (our format)")
    model.add_argument("--reference", action="store_true", help="full-size random-init reference state_dict")
    model.add_argument("--checkpoint", type=Path, help="an existing checkpoint file")
    parser.add_argument("--videos", type=Path, default=SHARED / "videos", help="folder (recursive)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many clips (0: all)")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--no-explain", action="store_true", help="skip Grad-CAM overlays")
    return parser


def main(args):
    workdir = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    setup_django(workdir)
    from unittest import mock

    from django.conf import settings

    from detector.models import Result, User
    from detector.registry import install_checkpoint
    from detector.tasks import analyze_submission
    from ml_core.constants import VIDEO_EXTENSIONS
    from tests.detector._worker_support import stored_submission

    settings.DETECTOR_EXPLAIN = not args.no_explain
    if args.tiny:
        from tests.helpers.checkpoints import make_tiny_checkpoint

        checkpoint, kind = make_tiny_checkpoint(workdir / "tiny.pt"), "tiny random-weight (our format)"
    elif args.reference:
        from tests.helpers.checkpoints import make_reference_state_dict_file

        checkpoint = make_reference_state_dict_file(workdir, frames=args.frames)
        kind = "full-size ResNeXt50+LSTM random-init (reference state_dict format)"
    else:
        checkpoint, kind = args.checkpoint, f"given checkpoint {args.checkpoint}"
    detector = install_checkpoint(checkpoint, activate=True)
    owner = User.objects.create_user("bench")
    clips = sorted(p for p in args.videos.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
    clips = clips[: args.limit] if args.limit else clips
    print(f"model: {kind}, sha256 {detector.sha256[:12]}; {len(clips)} clips; N={args.frames} frames")

    rows = []
    # One job after another, as a `-c 1` worker runs them; the message is not needed here.
    with mock.patch("detector.services.dispatch_on_commit"):
        started_all = time.perf_counter()
        for clip in clips:
            submission = stored_submission(owner, clip, frames=args.frames, enqueue=True)
            started = time.perf_counter()
            outcome = analyze_submission.apply(args=[submission.pk]).get()
            wall = time.perf_counter() - started
            submission.refresh_from_db()
            result = Result.objects.filter(submission=submission).first()
            worker = result.timings["worker"] if result else {}
            ml = sum(worker.get(k, 0.0) for k in ("model_load", "extract", "predict", "explain"))
            rows.append((clip.name, outcome, wall, wall - ml if result else None, worker, submission))
            verdict = result.verdict if result else submission.error_message[:60]
            print(f"{wall:6.2f}s  {outcome:7} {verdict:10} {clip.name}")
        elapsed = time.perf_counter() - started_all

    done = [r for r in rows if r[3] is not None]
    overheads = [r[3] for r in done[1:]] or [r[3] for r in done]  # the first job also loads the model
    print()
    print(f"jobs: {len(rows)} ({len(done)} done, {len(rows) - len(done)} failed with a typed error)")
    print(
        f"throughput: {len(rows) / elapsed * 60:.1f} videos/min "
        f"({elapsed:.1f}s for {len(rows)} clips, 1 process)"
    )
    if overheads:
        print(
            f"worker overhead per video (claim, copy, DB writes, images, transaction): "
            f"median {statistics.median(overheads):.3f}s, mean {statistics.mean(overheads):.3f}s, "
            f"max {max(overheads):.3f}s"
        )
        parts = ("claim", "copy_video", "save_images")
        for part in parts:
            values = [r[4].get(part, 0.0) for r in done]
            print(f"  {part:10} median {statistics.median(values) * 1000:7.1f} ms")
        first_load = done[0][4].get("model_load", 0.0)
        print(f"model load (first job only): {first_load:.2f}s")
    print(f"work folder (delete when done): {workdir}")


if __name__ == "__main__":
    main(get_args_parser().parse_args())
