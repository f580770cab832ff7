"""Reproduce the detector shipped in models/default from a clean checkout (`make model`).

    python -m ml_core.cli.default_model [--training ../shared/training] [--videos ../shared/videos]
                                    [--run-dir var/default-model] [--out models/default]

Steps: train the frame model with RECIPE (ml_core.cli.train) on the labelled public clips; train
an LSTM head over its frame features and keep whichever of the two wins on validation
(ml_core.training.sequence); evaluate both on the identity-disjoint test split they never tuned
on, as shipped and re-encoded at c40 (ml_core.cli.evaluate); export the winner as float16
(ml_core.model.export) and write the test figures (metrics.json) beside it. An interrupted run
resumes after its last finished epoch. The split is made from the seed, so the test clips are the same on
every run; a GPU is used when there is one.
"""

import argparse
import hashlib
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ml_core.cli import evaluate, train
from ml_core.io import write_json
from ml_core.model.export import export_checkpoint
from ml_core.training import metrics
from ml_core.training.evaluation import breakdowns, json_safe
from ml_core.training.sequence import SequenceHeadConfig, fit_for_run

logger = logging.getLogger("ml_core.cli.default_model")

ROOT = Path(__file__).resolve().parents[2]

# The recipes, as ml_core.cli.train arguments (data, output and cache folders are added by `main`).
# Why each choice: see the ablations in models/default/MODEL_CARD.md.
RECIPES = {
    # EfficientNet-Lite0 from its ImageNet weights, frames scored on their own, robust to H.264.
    "lite0": [
        "--backbone", "efficientnet_lite0",
        "--mode", "reference",
        "--image-size", "160",
        "--margin", "0.25",
        "--cache-frames", "32",
        "--fakes", "both",
        "--val-fakes", "dataset",
        "--frames", "4",
        "--eval-frames", "16",
        "--batch-size", "16",
        "--repeats", "2",
        "--epochs", "12",
        "--patience", "6",
        "--lr", "2e-4",
        "--dropout", "0.3",
        "--frame-loss", "1.0",
        "--augment", "robust",
        "--freeze-stages", "3",
        "--val-crf", "40",
        "--max-fpr", "0.1",
        "--val-fraction", "0.15",
        "--test-fraction", "0.25",
        "--seed", "0",
    ],
    # Fixed high-pass and colour maps + a small CNN, trained from scratch (0.49 M weights).
    "residual": [
        "--backbone", "residual",
        "--mode", "reference",
        "--image-size", "128",
        "--margin", "0.25",
        "--cache-frames", "32",
        "--fakes", "both",
        "--val-fakes", "dataset",
        "--frames", "4",
        "--eval-frames", "16",
        "--batch-size", "16",
        "--repeats", "4",
        "--epochs", "30",
        "--patience", "10",
        "--lr", "1e-3",
        "--dropout", "0.3",
        "--frame-loss", "1.0",
        "--augment", "none",
        "--max-fpr", "0.1",
        "--val-fraction", "0.15",
        "--test-fraction", "0.25",
        "--seed", "0",
    ],
}  # fmt: skip
SHIPPED_RECIPE = "lite0"
RECIPE = RECIPES[SHIPPED_RECIPE]


def get_args_parser():
    parser = argparse.ArgumentParser(description="Train, test and export the shipped default detector")
    parser.add_argument("--training", default=str(ROOT.parent / "shared" / "training"))
    parser.add_argument("--videos", default=str(ROOT.parent / "shared" / "videos"))
    parser.add_argument("--run-dir", default=str(ROOT / "var" / "default-model"))
    parser.add_argument("--out", default=str(ROOT / "models" / "default"))
    parser.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def manifest_sha256(folders) -> str:
    """One hash over the datasets' MANIFEST.tsv files (what the model was trained on)."""
    digest = hashlib.sha256()
    for folder in folders:
        digest.update((Path(folder) / "MANIFEST.tsv").read_bytes())
    return digest.hexdigest()


def share_at_or_above(scores, threshold, label) -> float:
    """The share of `label` clips scoring at or above the threshold (NaN when there are none)."""
    chosen = [s["p_fake"] for s in scores if s["label"] == label]
    return float(np.mean(np.array(chosen) >= threshold)) if chosen else float("nan")


def false_positive_rate(scores, threshold) -> float:
    return share_at_or_above(scores, threshold, "REAL")


def slim_report(report: dict) -> dict:
    """The test figures the model card quotes, plus every test clip's score."""
    ffpp = [s for s in report["scores"] if s["source"].endswith("ffpp")]
    y = np.array([s["label"] == "FAKE" for s in ffpp], dtype=np.int64)
    p = np.array([s["p_fake"] for s in ffpp])
    threshold = report["threshold"]
    return {
        "threshold": threshold,
        "video": {
            k: report["video"][k] for k in ("count", "fakes", "reals", "auc", "average_precision", "eer")
        },
        "video_balanced_accuracy": report["video"]["balanced_accuracy"],
        "false_positive_rate_real": false_positive_rate(report["scores"], threshold),
        "faceforensics": {
            "count": int(y.size),
            "fakes": int(y.sum()),
            "auc": metrics.roc_auc(y, p),
            "false_positive_rate_real": false_positive_rate(ffpp, threshold),
            "method": breakdowns(ffpp, threshold)["method"],
        },
        "method": report["breakdown"]["method"],
        "source": report["breakdown"]["source"],
        "no_face": report["no_face"],
        "scores": [
            {k: s[k] for k in ("video_id", "label", "source", "method", "p_fake")} for s in report["scores"]
        ],
    }


def test_reports(checkpoint, run_dir, data, common, device, subset="test") -> dict:
    """The checkpoint on the held-out test split (or `subset`): as shipped (c23 mostly) and at c40."""
    reports = {}
    for name, extra in (("clean", []), ("c40", ["--recompress", "c40"])):
        reports[name] = evaluate.main(
            data
            + common
            + device
            + extra
            + [
                "--checkpoint", str(checkpoint),
                "--split", str(run_dir / "split.json"),
                "--subset", subset,
                "--fakes", "dataset",
                "--cache-frames", "32",
                "--out", str(run_dir / f"{subset}-{Path(checkpoint).stem}-{name}"),
            ]
        )  # fmt: skip
    return reports


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    run_dir, out = Path(args.run_dir), Path(args.out)
    for folder in (args.training, args.videos):
        if not (Path(folder) / "MANIFEST.tsv").is_file():
            raise SystemExit(f"{folder}: no MANIFEST.tsv (the labelled public clips are needed)")
    data = ["--data", args.training, "--data", args.videos]
    # Caching runs before training, so it may use every core.
    cache = ["--cache-dir", str(run_dir / "cache"), "--cache-workers", str(os.cpu_count() or 1)]
    common = cache + (["--no-progress"] if args.no_progress else [])
    device = ["--device", args.device] if args.device else []
    threads = ["--threads", str(args.threads)] if args.threads else []
    # An interrupted run picks up after its last finished epoch (RUN_DIR/last.pt).
    resume = ["--resume"] if (run_dir / "last.pt").is_file() else []
    if resume:
        logger.info("resuming the run in %s", run_dir)
    started = time.perf_counter()
    train.main(RECIPE + data + common + device + threads + resume + ["--out", str(run_dir)])
    train_seconds = time.perf_counter() - started
    # 1. The temporal head: an LSTM over the frames' features, kept only if it beats the frame
    # mean on validation (clean and compressed).
    sequence_report = fit_for_run(run_dir, SequenceHeadConfig(), device=args.device)
    # 2. Both on the test split, clean and re-encoded: the card reports the two side by side.
    tests = {
        "frame_mean": test_reports(run_dir / "best.pt", run_dir, data, common, device),
        "sequence": test_reports(run_dir / "sequence.pt", run_dir, data, common, device),
    }
    winner = sequence_report["winner"]
    other = "frame_mean" if winner == "sequence" else "sequence"
    chosen = run_dir / ("sequence.pt" if winner == "sequence" else "best.pt")
    out.mkdir(parents=True, exist_ok=True)
    _, _, size, sha256 = export_checkpoint(chosen, out / "detector.pt")
    checkpoint = torch.load(chosen, map_location="cpu", weights_only=True)
    facts = {
        "sha256": sha256,
        "bytes": size,
        "data_manifest_sha256": manifest_sha256([args.training, args.videos]),
        "recipe": RECIPE,
        "temporal_head": {k: v for k, v in sequence_report.items() if k != "history"},
        "config": checkpoint["config"],
        "validation": checkpoint.get("metrics", {}),
        "split_counts": json.loads((run_dir / "config.json").read_text())["data"]["split"],
        "train_seconds": round(train_seconds),
        "total_seconds": round(time.perf_counter() - started),
        "device": str(args.device or ("cuda" if torch.cuda.is_available() else "cpu")),
        "environment": {"python": platform.python_version(), "torch": torch.__version__},
        "test": slim_report(tests[winner]["clean"]),
        "test_c40": slim_report(tests[winner]["c40"]),
        # The head that lost on validation, on the same test clips.
        "test_other_head": {
            "head": other,
            **{split: slim_report(report)["video"] for split, report in tests[other].items()},
        },
    }
    write_json(out / "metrics.json", json_safe(facts))
    logger.info(
        "wrote %s (%s head, %.1f MB, sha256 %s) and %s",
        out / "detector.pt",
        winner,
        size / 1e6,
        sha256,
        out / "metrics.json",
    )
    return facts


if __name__ == "__main__":
    main()
