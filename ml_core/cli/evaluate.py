"""Evaluate a detector checkpoint the way the field reports results.

    python -m ml_core.cli.evaluate --checkpoint CKPT --data DATASET --out REPORT_DIR [--compare CKPT2]

Writes REPORT_DIR/report.json (video-level AUC first, frame-level AUC, accuracy and balanced
accuracy at the checkpoint's threshold, F1 per class, EER, average precision, confusion matrix,
per-manipulation-method and per-source breakdowns, the videos where no face was found, and
every video's score), roc.png and confusion_matrix.png. With --compare, the second checkpoint
is scored on the same videos and the report adds McNemar's test on the paired decisions and the
AUC difference with a bootstrap confidence interval. With --recompress c40 every video is first
re-encoded with H.264 (kept under the cache folder) and the copies are scored: the detector's
figures on compressed uploads.

Videos where no face is found cannot be scored; they are counted and listed in the report
("no_face"), never dropped silently.
"""

import argparse
import logging
import os
import sys

from ml_core.cli import exits_on_usage_error
from ml_core.cli.options import add_dataset_options
from ml_core.constants import FACE_DETECTORS
from ml_core.media.compression import PRESETS as COMPRESSION_PRESETS
from ml_core.training import evaluation
from ml_core.training.clips import FAKE_SOURCES


def get_args_parser(add_help=True):
    parser = argparse.ArgumentParser(description="Evaluate a deepfake detector checkpoint", add_help=add_help)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument(
        "--compare", default=None, help="a second checkpoint to compare with on the same videos"
    )
    add_dataset_options(parser)
    parser.add_argument("--out", required=True, help="report folder")
    parser.add_argument("--split", default=None, help="split file (from training) to select --subset from")
    parser.add_argument("--subset", default="test", choices=("train", "val", "test", "all"))
    parser.add_argument(
        "--fakes",
        default="dataset",
        choices=FAKE_SOURCES,
        help="also (or only) score self-blended fakes made from the real videos",
    )
    parser.add_argument(
        "--frames", type=int, default=None, help="frames per video (default: the checkpoint's)"
    )
    parser.add_argument("--cache-dir", default=None, help="face crop cache (default REPORT_DIR/cache)")
    parser.add_argument("--cache-frames", type=int, default=None, help="frames cached per video (default 20)")
    parser.add_argument("--cache-workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument(
        "--detector",
        default=None,
        choices=FACE_DETECTORS,
        help="face detector (default: the one the checkpoint was trained with)",
    )
    parser.add_argument(
        "--fakes-per-video",
        type=int,
        default=1,
        help="self-blended fakes per real video (as --val-fakes-per-video)",
    )
    parser.add_argument("--sbi-blend-ratios", type=float, nargs="+", default=None, help="as in training")
    parser.add_argument("--sbi-colour-shift", type=float, default=None, help="as in training")
    parser.add_argument("--threshold", type=float, default=None, help="override the checkpoint's threshold")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for --compare")
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=0, help="seed of the self-blended fakes (as in training)")
    parser.add_argument(
        "--recompress",
        default=None,
        choices=tuple(COMPRESSION_PRESETS),
        help="re-encode every video with H.264 first (c40: FaceForensics++'s heavy setting; social: "
        "640 px at CRF 36) and score those copies",
    )
    parser.add_argument("--no-progress", action="store_true")
    return parser


@exits_on_usage_error
def main(args=None):
    """Evaluate. `args`: parsed arguments, or a list of command-line strings (None: sys.argv)."""
    if args is None or isinstance(args, (list, tuple)):
        args = get_args_parser().parse_args(args)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout
        )
    result = evaluation.evaluate(args)
    video = result["video"]
    print(
        f"{result['checkpoint']['name']}: {result['scored']} clips scored, "
        f"{result['no_face']['count']} videos without a face | "
        f"video AUC {video['auc']:.4f}  frame AUC {result['frame']['auc']:.4f}  "
        f"accuracy {video['accuracy']:.3f}  balanced accuracy {video['balanced_accuracy']:.3f}  "
        f"EER {video['eer']:.3f}  AP {video['average_precision']:.3f}  (threshold {result['threshold']:.3f})"
    )
    if args.compare:
        c = result["compare"]
        diff = c["auc_difference"]
        print(
            f"vs {c['checkpoint']['name']}: AUC {c['auc_second']:.4f}; difference {diff['difference']:+.4f} "
            f"[{diff['low']:+.4f}, {diff['high']:+.4f}]; McNemar p = {c['mcnemar']['p_value']:.4g}"
        )
    print(f"report: {args.out}/report.json")
    return result


if __name__ == "__main__":
    main()
