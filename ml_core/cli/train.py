"""Train or fine-tune a detector with one command.

    python -m ml_core.cli.train --data DATASET [--data ANOTHER] --out RUN_DIR [options]

Steps: read the dataset(s) (ml_core.training.datasets), cache the face crops once
(ml_core.training.cache), make or reuse a seeded, stratified, identity-disjoint split
(ml_core.training.splits), then train with AdamW, a cosine schedule with warm-up, class
weighting, augmentation and (on CUDA) mixed precision, evaluating video AUC on the validation
split after every epoch. RUN_DIR receives the files listed in ml_core.training.run.

`--fakes self-blended` trains from real videos alone: every real training clip is also shown as
a self-blended fake (ml_core.training.sbi), and the validation set gets one fixed self-blended fake per
validation real video. `--fakes both` mixes those with the dataset's own fakes.

The work happens in ml_core.training (run: the whole run; engine: train_one_epoch() and evaluate();
clips: what a batch holds); this module only parses arguments, like torchvision's references.
"""

import argparse
import os

from ml_core.cli import exits_on_usage_error
from ml_core.cli.options import add_dataset_options
from ml_core.constants import CONTRASTS, DEFAULT_FACE_DETECTOR, FACE_DETECTORS
from ml_core.model.detector import BACKBONES
from ml_core.training import run
from ml_core.training.augment import PRESETS
from ml_core.training.clips import FAKE_SOURCES


def get_args_parser(add_help=True):
    parser = argparse.ArgumentParser(description="Train a deepfake video detector", add_help=add_help)
    data = parser.add_argument_group("data")
    add_dataset_options(data)
    data.add_argument("--out", required=True, help="run folder (checkpoints, config, split, history)")
    data.add_argument(
        "--cache-dir", default=None, help="face crop cache (default RUN_DIR/cache); share it between runs"
    )
    data.add_argument(
        "--cache-frames", type=int, default=20, help="frames sampled and cached per video (10..100)"
    )
    data.add_argument("--cache-workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    data.add_argument(
        "--margin", type=float, default=0.0, help="crop margin (fraction of the face box per side)"
    )
    data.add_argument(
        "--detector",
        default=DEFAULT_FACE_DETECTOR,
        choices=FACE_DETECTORS,
        help="face detector the crops are made with (recorded in the checkpoint: inference uses it too)",
    )
    data.add_argument(
        "--contrast",
        default="auto",
        choices=CONTRASTS,
        help="dark or flat frames equalised for detection (auto) or not (off); recorded like --detector",
    )
    data.add_argument(
        "--split", default=None, help="split file to reuse (default: RUN_DIR/split.json, made if absent)"
    )
    data.add_argument(
        "--generated",
        action="append",
        default=[],
        help="folder written by ml_core.cli.make_fakes with this run's split file (repeatable): its "
        "fakes and reals from training-split people are added to the training clips only",
    )
    data.add_argument("--val-fraction", type=float, default=0.2)
    data.add_argument(
        "--val-fakes-per-video",
        type=int,
        default=1,
        help="fixed self-blended fakes per validation real video (finer validation AUC on small data)",
    )
    data.add_argument("--test-fraction", type=float, default=0.0)
    data.add_argument("--no-official-split", action="store_true", help="ignore the dataset's own split")
    data.add_argument(
        "--fakes",
        default="dataset",
        choices=FAKE_SOURCES,
        help="fakes to train on: the dataset's, self-blended ones made from its real videos, or both",
    )
    data.add_argument(
        "--val-fakes",
        default=None,
        choices=FAKE_SOURCES,
        help="fakes to validate (choose the best epoch) on; default: as --fakes. Self-blended fakes "
        "alone do not tell whether a detector finds real deepfakes",
    )
    data.add_argument(
        "--sbi-blend-ratios",
        type=float,
        nargs="+",
        default=None,
        help="self-blended fakes: weights of the altered copy to draw from (default: the paper's)",
    )
    data.add_argument(
        "--sbi-colour-shift",
        type=float,
        default=None,
        help="self-blended fakes: largest per-channel colour shift of the altered copy (0..255)",
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--mode", default="native", choices=("native", "reference"), help="native: LSTM over frames"
    )
    model.add_argument("--backbone", default="resnext50_32x4d", choices=BACKBONES)
    model.add_argument("--feature-dim", type=int, default=None, help="tiny backbone only: feature width")
    model.add_argument("--hidden-size", type=int, default=None, help="LSTM width (default from the mode)")
    model.add_argument("--dropout", type=float, default=0.4)
    model.add_argument(
        "--image-size", type=int, default=None, help="face crop side the model sees (default from the mode)"
    )
    model.add_argument(
        "--backbone-weights", default=None, help="local torchvision ResNeXt50 ImageNet state_dict"
    )
    model.add_argument(
        "--freeze-stages",
        type=int,
        default=0,
        help="keep the first N of the backbone's 8 stages as initialised (weights and batch norm)",
    )
    model.add_argument(
        "--init-checkpoint", default=None, help="start from this checkpoint (ours or the reference's)"
    )
    train = parser.add_argument_group("training")
    train.add_argument("--frames", type=int, default=8, help="frames per clip per training step")
    train.add_argument(
        "--eval-frames", type=int, default=None, help="frames per video at validation (default --frames)"
    )
    train.add_argument("--clip-sampling", default="contiguous", choices=("contiguous", "uniform"))
    train.add_argument("--epochs", type=int, default=20)
    train.add_argument(
        "--repeats", type=int, default=1, help="times each training clip is drawn per epoch (small datasets)"
    )
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--accum-steps", type=int, default=1, help="gradient accumulation steps")
    train.add_argument("--lr", type=float, default=3e-4)
    train.add_argument("--weight-decay", type=float, default=0.05)
    train.add_argument("--warmup-epochs", type=float, default=1.0)
    train.add_argument("--min-lr-ratio", type=float, default=0.01)
    train.add_argument("--class-weights", default="balanced", choices=("balanced", "none"))
    train.add_argument(
        "--frame-loss",
        type=float,
        default=0.0,
        help="weight of a per-frame loss added to the video loss (more signal per step on small data)",
    )
    train.add_argument(
        "--augment",
        default="full",
        choices=tuple(PRESETS),
        help="full: mirror, colour, blur, recompression; light: mirror and colour; none",
    )
    train.add_argument("--no-augment", action="store_true", help="same as --augment none")
    train.add_argument(
        "--amp", default="auto", choices=("auto", "on", "off"), help="mixed precision (CUDA only)"
    )
    train.add_argument(
        "--patience", type=int, default=5, help="epochs without better val AUC before stopping"
    )
    train.add_argument(
        "--val-crf",
        type=int,
        default=None,
        help="also validate on the clips after H.264 at this CRF; epochs are chosen by the mean AUC",
    )
    train.add_argument(
        "--max-fpr",
        type=float,
        default=None,
        help="threshold: at most this share of validation reals called FAKE (default: best balanced "
        "accuracy)",
    )
    train.add_argument(
        "--max-minutes", type=float, default=None, help="start no epoch that would end past this many minutes"
    )
    train.add_argument("--clip-grad", type=float, default=5.0)
    train.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    train.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    train.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda when available)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--deterministic", action="store_true", help="deterministic kernels (slower on CUDA)")
    train.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    train.add_argument("--no-progress", action="store_true", help="no tqdm bars (log lines only)")
    return parser


@exits_on_usage_error
def main(args=None):
    """Train. `args`: parsed arguments, or a list of command-line strings (None: sys.argv)."""
    parser = get_args_parser()
    if args is None or isinstance(args, (list, tuple)):
        args = parser.parse_args(args)
    return run.train(args, defaults={key: parser.get_default(key) for key in vars(args)})


if __name__ == "__main__":
    main()
