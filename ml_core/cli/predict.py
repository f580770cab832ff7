"""Run the detector on one video: `python -m ml_core.cli.predict VIDEO [--checkpoint PATH] [--json]`.

--checkpoint may be a file or a folder (the reference app's six files: the one matching --frames
is used). Without it, $DEEPFAKE_CHECKPOINT, else the shipped model (models/default/detector.pt,
named as the web app names it). --frames defaults to the web app's frame count. Exit status: 0 on a
verdict, 2 when the video or the checkpoint cannot be used (the reason is printed on stderr).
"""

import argparse
import json
import os
import sys
from pathlib import Path

import cv2

from ml_core.constants import DEFAULT_CHECKPOINT, DEFAULT_FRAMES
from ml_core.errors import MlCoreError
from ml_core.inference.score import SCORE_DEFINITION, score_definition
from ml_core.model.detector import AGGREGATIONS
from ml_core.model.names import default_model_name

CHECKPOINT_ENV = "DEEPFAKE_CHECKPOINT"


def get_args_parser():
    parser = argparse.ArgumentParser(
        prog="python -m ml_core.cli.predict", description=__doc__.splitlines()[0]
    )
    parser.add_argument("video", type=Path)
    parser.add_argument(
        "--checkpoint",
        default=os.environ.get(CHECKPOINT_ENV) or None,
        help=f"checkpoint file or folder (default: ${CHECKPOINT_ENV}, else the shipped model)",
    )
    parser.add_argument(
        "--frames", type=int, default=DEFAULT_FRAMES, help=f"frames to sample (default {DEFAULT_FRAMES})"
    )
    parser.add_argument("--json", action="store_true", help="print the whole prediction as JSON")
    parser.add_argument("--explain", type=Path, metavar="DIR", help="write Grad-CAM overlays (PNG) to DIR")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--uncertain-band", type=float, default=None, help="override the UNCERTAIN band")
    parser.add_argument("--aggregation", choices=AGGREGATIONS, default=None)
    return parser


def write_overlays(directory, prediction):
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for identity, images in prediction.overlays.items():
        info = next(i for i in prediction.identities if i.id == identity)
        for frame_index, image in zip(info.frame_indices, images):
            path = directory / f"identity{identity}_frame{frame_index:06d}.png"
            cv2.imwrite(str(path), image)
            written.append(path)
    return written


def summary(prediction, extraction, definition=SCORE_DEFINITION):
    # The verdict in the web page's words; the UNCERTAIN rule on a line of its own, so that it
    # cannot be read as part of the verdict.
    low = prediction.threshold - prediction.uncertain_band
    high = prediction.threshold + prediction.uncertain_band
    likely = ""
    if prediction.score_interval:
        range_low, range_high = prediction.score_interval
        likely = f", likely range {range_low * 100:.0f}–{range_high * 100:.0f}%"
    lines = [
        f"{prediction.label}: {prediction.fake_probability * 100:.1f}% probability of being fake "
        f"({prediction.fake_probability:.3f}){likely}",
        f"  how it is called: REAL at {low:.2f} or below, UNCERTAIN between {low:.2f} and {high:.2f}, "
        f"FAKE at {high:.2f} or above; UNCERTAIN too when the likely range reaches both sides of "
        f"{prediction.threshold:.2f}",
        f"  the score: {definition}",
        f"model {prediction.model_name}  sha256 {prediction.model_sha256}  on {prediction.device}",
    ]
    for identity in prediction.identities:
        role = "main face" if identity.id == prediction.main_identity else "other face"
        lines.append(
            f"  identity {identity.id} ({role}, {len(identity.frame_indices)} frames): {identity.label} "
            f"{identity.fake_probability:.3f}" + ("" if identity.counted else "  [too few frames to count]")
        )
        frames = ", ".join(
            f"{i}:{p:.2f}" for i, p in zip(identity.frame_indices, identity.frame_probabilities)
        )
        lines.append(f"    per frame: {frames}")
    lines.extend(f"warning: {w}" for w in extraction.warnings)
    timings = ", ".join(
        f"{k} {v:.2f}s" for k, v in prediction.timings.items() if k in ("extract", "forward", "total")
    )
    lines.append(f"timings: {timings}")
    return "\n".join(lines)


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    checkpoint = args.checkpoint or DEFAULT_CHECKPOINT
    if not args.checkpoint and not DEFAULT_CHECKPOINT.is_file():
        print(
            f"error: the shipped model {DEFAULT_CHECKPOINT} is missing (`make model` rebuilds it); "
            f"pass --checkpoint PATH or set ${CHECKPOINT_ENV}",
            file=sys.stderr,
        )
        return 2
    from ml_core.inference.analysis import analyse
    from ml_core.inference.predictor import Predictor
    from ml_core.model.checkpoints import resolve_checkpoint

    try:
        path = resolve_checkpoint(checkpoint, args.frames)
        predictor = Predictor(
            path,
            device=args.device,
            uncertain_band=args.uncertain_band,
            aggregation=args.aggregation,
            # The shipped model goes by the name the web app gives it, however it was reached.
            name=default_model_name(path) if path.resolve() == DEFAULT_CHECKPOINT.resolve() else None,
        )
        analysis = analyse(args.video, lambda: predictor, frames=args.frames, explain=bool(args.explain))
        extraction, prediction = analysis.extraction, analysis.prediction
    except MlCoreError as exc:
        print(f"error: {exc.user_message}", file=sys.stderr)
        if exc.detail and exc.detail != exc.user_message:
            print(f"detail: {exc.detail}", file=sys.stderr)
        return 2
    except ValueError as exc:  # an impossible option: --frames 5, --device cuda without CUDA
        print(f"error: {exc}", file=sys.stderr)
        return 2
    written = write_overlays(args.explain, prediction) if args.explain else []
    definition = score_definition(predictor.config.aggregation)
    if args.json:
        data = prediction.to_dict()
        data["score_definition"] = definition
        data["extraction"] = extraction.to_dict()
        data["overlay_files"] = [str(p) for p in written]
        print(json.dumps(data, indent=2))
    else:
        print(summary(prediction, extraction, definition))
        if written:
            print(f"wrote {len(written)} Grad-CAM overlays to {args.explain}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
