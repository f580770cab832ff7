"""Benchmarks (ml_core.bench, one module per mode):

    python -m ml_core.cli.bench VIDEO... --frames 20 [--boxes fast|exact] [--iou] [--repeats 3] [--json F]
        our media pipeline against the reference app's preprocessing (ml_core.bench.pipeline)
    python -m ml_core.cli.bench FOLDER... --detectors hog hog+mtcnn --one-process --reference-clips 6
        face detectors side by side on every clip of the folders (ml_core.bench.detectors)
    python -m ml_core.cli.bench --inference ...
        classifier throughput, load time and memory (ml_core.bench.inference)
    python -m ml_core.cli.bench --make-clip SRC DST --seconds 45
        loop a clip into a longer one (ml_core.bench.clips)

Without --one-process each measured run goes to its own subprocess, so its peak memory is its
own; --one-process runs everything here (no per-run peak memory, but no ~6 s start per run).
The MTCNN -> HOG box calibration is fitted by scripts/fit_mtcnn_to_hog.py.
"""

import argparse
import json
import sys
from pathlib import Path

from ml_core.bench import clips, detectors, pipeline
from ml_core.bench.runs import current_rss_mb, peak_rss_mb, warm_up
from ml_core.constants import BOX_MODES


def get_args_parser():
    parser = argparse.ArgumentParser(prog="python -m ml_core.cli.bench", description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--pipelines", default="ours,reference", help="comma list: ours,reference")
    parser.add_argument("--iou", action="store_true", help="also measure box IoU vs full-resolution HOG")
    parser.add_argument(
        "--reference-max-gb", type=float, default=8.0, help="skip the whole-video decode beyond"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of our pipeline per clip (the median is reported; the reference's 10+ s run is "
        "long enough that one run is steady)",
    )
    parser.add_argument(
        "--boxes",
        choices=BOX_MODES,
        default="fast",
        help="our face boxes: fast, or exactly full-resolution HOG's (ml_core.media.hog_exact)",
    )
    parser.add_argument(
        "--detectors",
        nargs="+",
        type=detectors.parse_detector,
        metavar="DETECTOR[:CONTRAST]",
        help="compare these face detectors on every clip (e.g. hog hog+mtcnn, hog:off)",
    )
    parser.add_argument(
        "--reference-clips",
        type=int,
        default=3,
        help="with --detectors: the reference pipeline runs on this many 1080p and this many 720p clips",
    )
    parser.add_argument(
        "--one-process", action="store_true", help="run everything in this process (no per-run peak memory)"
    )
    parser.add_argument("--json", type=Path, help="also write all results here")
    parser.add_argument("--make-clip", nargs=2, metavar=("SRC", "DST"))
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--worker", choices=("ours", "reference", "iou", "detector"), help=argparse.SUPPRESS)
    return parser


def worker(args):
    """One measured run, in a process of its own (runs.spawn); prints its figures as JSON."""
    warm_up(mtcnn=bool(args.detectors) and "mtcnn" in args.detectors[0][0])
    baseline = current_rss_mb()
    video = args.videos[0]
    try:
        if args.worker == "detector":
            result = detectors.run_detector(video, args.frames, *args.detectors[0])
        elif args.worker == "ours":
            result = pipeline.run_ours(video, args.frames, boxes=args.boxes)
        elif args.worker == "reference":
            result = pipeline.run_reference(video, args.frames, args.reference_max_gb)
        else:
            result = pipeline.run_iou(video, args.frames, boxes=args.boxes)
    except Exception as exc:  # reported, not raised: one bad clip must not stop the benchmark
        result = {"error": f"{type(exc).__name__}: {exc}"}
    result["baseline_rss_mb"] = round(baseline, 1)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(result))
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--inference" in argv:
        from ml_core.bench import inference  # loads torch: only when asked

        return inference.main([a for a in argv if a != "--inference"])
    args = get_args_parser().parse_args(argv)
    if args.worker:
        return worker(args)
    if args.make_clip:
        print(clips.make_clip(*args.make_clip, seconds=args.seconds))
        return 0
    if args.detectors:
        return detectors.compare_detectors(args)
    return pipeline.compare_pipelines(args)


if __name__ == "__main__":
    sys.exit(main())
