"""Extract the face crops the model would see, and report how they were found.

    python -m ml_core.cli.extract VIDEO --frames 20 [--strategy uniform|first-n] [--out DIR] [--json]
        [--detector hog+mtcnn|hog|mtcnn|cnn] [--contrast auto|off]

Writes crops as JPEG (DIR/identity_<id>/frame_<index>.jpg) and prints a JSON report: probe,
sampled indices and timestamps, boxes, identities, missing frames, per-stage timings and
peak memory. A typed error prints its user message and exits with status 2.
"""

import argparse
import json
import resource
import sys
from pathlib import Path

import cv2

from ml_core.constants import BOX_MODES, CONTRASTS, DEFAULT_FRAMES, FACE_DETECTORS, MAX_FRAMES, MIN_FRAMES
from ml_core.errors import MlCoreError
from ml_core.media.extraction import STRATEGIES, ExtractConfig, extract_faces


def get_args_parser():
    parser = argparse.ArgumentParser(
        prog="python -m ml_core.cli.extract", description=__doc__.splitlines()[0]
    )
    parser.add_argument("video")
    parser.add_argument(
        "--frames",
        type=int,
        default=DEFAULT_FRAMES,
        help=f"frames to sample ({MIN_FRAMES}..{MAX_FRAMES}, default {DEFAULT_FRAMES})",
    )
    parser.add_argument("--strategy", choices=STRATEGIES, default="uniform")
    parser.add_argument(
        "--detector",
        choices=FACE_DETECTORS,
        default=None,
        help="face detector (default hog+mtcnn; with --boxes exact, hog)",
    )
    parser.add_argument(
        "--contrast",
        choices=CONTRASTS,
        default=None,
        help="equalise dark or flat frames for the detector only (default auto; with --boxes exact, off)",
    )
    parser.add_argument("--margin", type=float, default=0.0, help="box fraction added on each side")
    parser.add_argument("--crop-size", type=int, default=112)
    parser.add_argument("--work-max-side", type=int, default=ExtractConfig.work_max_side)
    parser.add_argument(
        "--boxes",
        choices=BOX_MODES,
        default="fast",
        help="exact: full-resolution HOG's boxes, as the reference checkpoints were trained on",
    )
    parser.add_argument(
        "--full-scan-every",
        type=int,
        default=ExtractConfig.full_scan_every,
        help="a whole-frame scan every N sampled frames; in between, faces are sought near their last place",
    )
    parser.add_argument("--out", type=Path, help="write crops as JPEG here")
    parser.add_argument("--json", action="store_true", help="print only the JSON report")
    return parser


def peak_rss_mb():
    # ru_maxrss is in KiB on Linux: the honest peak, C allocations (FFmpeg, dlib) included.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def write_crops(extraction, out):
    paths = []
    for frame in extraction.frames:
        for face in frame.faces:
            folder = out / f"identity_{face.identity}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"frame_{frame.index:06d}.jpg"
            cv2.imwrite(str(path), face.crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
            paths.append(str(path))
    return paths


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    try:
        config = ExtractConfig(
            frames=args.frames,
            strategy=args.strategy,
            detector=args.detector,
            contrast=args.contrast,
            margin=args.margin,
            crop_size=args.crop_size,
            work_max_side=args.work_max_side,
            boxes=args.boxes,
            full_scan_every=args.full_scan_every,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        extraction = extract_faces(args.video, config)
    except MlCoreError as exc:
        report = {"error": exc.code, "message": exc.user_message, "detail": str(exc)}
        print(json.dumps(report, indent=2))
        print(f"error: {exc.user_message}", file=sys.stderr)
        return 2
    report = extraction.to_dict()
    if args.out:
        report["crops"] = write_crops(extraction, args.out)
    report["peak_rss_mb"] = peak_rss_mb()
    if not args.json:
        print(
            f"{args.video}: {len(extraction.frames)} frames sampled, "
            f"{len(extraction.identities)} identities, main face in {len(extraction.track())} frames, "
            f"{report['timings']['total']:.2f} s",
            file=sys.stderr,
        )
        for warning in extraction.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
