"""Make training fakes (face swaps, mouth re-enactments) from real clips, with their real counterparts.

    python -m ml_core.cli.make_fakes --data ../shared/training [--data ...] --out DIR
        [--kinds swap,mouth] [--per-clip N] [--compressions c23,c40] [--split SPLIT_JSON]
        [--seed 0] [--segment-seconds 4] [--limit K]

Writes DIR/<kind>/<compression>/*.mp4, DIR/real/<compression>/*.mp4, DIR/MANIFEST.tsv,
DIR/skipped.tsv, DIR/summary.json and DIR/contact_<kind>.png; prints progress per clip and a
summary line. `ml_core.training.fakes.reader.read_generated(DIR)` lists the result for training.
"""

import argparse
import logging
import sys

import numpy as np

from ml_core.cli.options import add_dataset_options
from ml_core.media.compression import PRESETS
from ml_core.training.datasets import load_dataset, merge
from ml_core.training.fakes.generate import KINDS, GenerateConfig, generate
from ml_core.training.splits import load_split


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def get_args_parser():
    parser = argparse.ArgumentParser(
        prog="python -m ml_core.cli.make_fakes", description=__doc__.splitlines()[0]
    )
    add_dataset_options(parser)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--kinds", type=_names, default=KINDS, help=f"comma-separated: {','.join(KINDS)}")
    parser.add_argument("--per-clip", type=int, default=1, help="fakes of each kind per real clip")
    parser.add_argument(
        "--compressions", type=_names, default=("c23",), help=f"comma-separated: {','.join(PRESETS)}"
    )
    parser.add_argument("--split", help="split file (ml_core.training.splits): sources stay in their split")
    parser.add_argument(
        "--subset",
        choices=("train", "val", "test"),
        default=None,
        help="with --split: only clips of this split are targets (training needs only 'train')",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--segment-seconds", type=float, default=GenerateConfig.segment_seconds)
    parser.add_argument("--max-side", type=int, default=GenerateConfig.max_side, help="shrink frames to this")
    parser.add_argument("--limit", type=int, default=0, help="at most this many target clips (seeded pick)")
    return parser


def pick_targets(reals, limit: int, seed: int):
    """All real clips, or `limit` of them in a seeded random pick (not the first few by name,
    which would all come from one dataset)."""
    reals = sorted(reals, key=lambda item: item.video_id)
    if not limit or limit >= len(reals):
        return reals
    chosen = np.random.default_rng(seed).permutation(len(reals))[:limit]
    return [reals[i] for i in sorted(chosen)]


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = GenerateConfig(
            kinds=args.kinds,
            per_clip=args.per_clip,
            compressions=args.compressions,
            segment_seconds=args.segment_seconds,
            max_side=args.max_side,
            seed=args.seed,
        )
        datasets = [
            load_dataset(
                path, args.layout, compression=args.compression, identity_pattern=args.identity_pattern
            )
            for path in args.data
        ]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    items = merge(datasets).items
    reals = [item for item in items if not item.is_fake]
    splits = load_split(args.split).assignments if args.split else None
    if args.subset and splits is None:
        print("error: --subset needs --split", file=sys.stderr)
        return 2
    pool = [item for item in reals if splits.get(item.video_id) == args.subset] if args.subset else reals
    targets = pick_targets(pool, args.limit, args.seed)
    print(f"{len(reals)} real clips, {len(targets)} targets, kinds {','.join(config.kinds)}", file=sys.stderr)
    report = generate(
        reals,
        args.out,
        config,
        splits=splits,
        targets=targets,
        progress=lambda line: print(line, file=sys.stderr),
    )
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
