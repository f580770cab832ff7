"""How often the verdict changes between 20 and 40 analysed frames, measured on the shared clips.

    nice -n 10 .venv/bin/python scripts/measure_frame_counts.py [--videos ../shared/videos]
        [--checkpoint models/default/detector.pt] [--frames 20 40] [--max-minutes 15] [--json OUT]

Runs the shipped model as the web app does (its face detector, its crop settings, the verdict
rule of ml_core.inference.predictor.verdict with the bootstrap range) on every clip listed in the
folder's MANIFEST.tsv, real and fake taken in turn, and prints each clip's verdicts and how many
changed. --max-minutes stops taking new clips once that much time has passed (the CPU is shared);
the summary then says how many clips it covered. The figure in the upload form's help text and
the README comes from one run of this script.
"""

import argparse
import csv
import json
import sys
import time
from itertools import zip_longest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml_core.constants import DEFAULT_CHECKPOINT  # noqa: E402
from ml_core.errors import MlCoreError  # noqa: E402
from ml_core.inference.analysis import analyse  # noqa: E402
from ml_core.inference.predictor import Predictor, verdict  # noqa: E402
from ml_core.model.names import default_model_name  # noqa: E402


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, default=ROOT.parent / "shared" / "videos")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--frames", type=int, nargs=2, default=[20, 40], metavar=("FEW", "MORE"))
    parser.add_argument("--max-minutes", type=float, default=15.0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: a shared CPU)")
    parser.add_argument("--json", type=Path, help="also write every clip's figures here")
    return parser


def clips_in_turn(folder):
    """The manifest's clips, real and fake alternating (so a time-limited run sees both)."""
    with open(folder / "MANIFEST.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    by_label = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    turns = zip_longest(*(by_label[label] for label in sorted(by_label)))
    return [row for turn in turns for row in turn if row is not None]


def run_one(predictor, path, frames):
    # The app's path (AnalysisJob.run): the checkpoint's own crop recipe.
    prediction = analyse(path, lambda: predictor, frames=frames).prediction
    band_only = verdict(prediction.fake_probability, prediction.threshold, prediction.uncertain_band)
    return {
        "verdict": prediction.label,
        "band_only_verdict": band_only,
        "score": round(prediction.fake_probability, 4),
        "interval": prediction.score_interval,
    }


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    few, more = args.frames
    name = (
        default_model_name(args.checkpoint)
        if args.checkpoint.resolve() == DEFAULT_CHECKPOINT.resolve()
        else None
    )
    predictor = Predictor(args.checkpoint, device="cpu", threads=args.threads, name=name)
    started = time.monotonic()
    rows, skipped = [], []
    clips = clips_in_turn(args.videos)
    for clip in clips:
        if time.monotonic() - started > args.max_minutes * 60:
            break
        path = args.videos / clip["local_file"]
        try:
            row = {"clip": clip["local_file"], "label": clip["label"]}
            row[few], row[more] = run_one(predictor, path, few), run_one(predictor, path, more)
        except MlCoreError as exc:
            skipped.append((clip["local_file"], exc.user_message))
            print(f"skipped {clip['local_file']}: {exc.user_message}", flush=True)
            continue
        rows.append(row)
        a, b = row[few], row[more]
        mark = "CHANGED" if a["verdict"] != b["verdict"] else "same"
        print(
            f"{mark:7} {clip['label']:4} {a['verdict']:9} {a['score']:.3f} -> "
            f"{b['verdict']:9} {b['score']:.3f}  {clip['local_file']}  ({time.monotonic() - started:.0f} s)",
            flush=True,
        )
    changed = sum(r[few]["verdict"] != r[more]["verdict"] for r in rows)
    band_changed = sum(r[few]["band_only_verdict"] != r[more]["band_only_verdict"] for r in rows)
    shift = sorted(abs(r[few]["score"] - r[more]["score"]) for r in rows)
    covered = f"{len(rows)} of {len(clips)} clips" + (
        f" ({len(skipped)} without a usable face)" if skipped else ""
    )
    print(f"\n{predictor.model_name}, sha256 {predictor.model_sha256[:12]}, {covered}")
    if rows:
        share = f"{changed} of {len(rows)} ({changed / len(rows):.0%})"
        print(f"verdict changed between {few} and {more} frames: {share}")
        print(f"  with the band alone (no likely range): {band_changed} of {len(rows)}")
        print(f"  score moved by {shift[len(shift) // 2]:.3f} (median), {shift[-1]:.3f} at most")
        for frames in (few, more):
            widths = sorted(
                r[frames]["interval"][1] - r[frames]["interval"][0] for r in rows if r[frames]["interval"]
            )
            if widths:
                print(f"  likely range at {frames} frames: {widths[len(widths) // 2]:.3f} wide (median)")
    print(f"took {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "skipped": skipped, "changed": changed}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
