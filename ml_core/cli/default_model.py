"""Reproduce the detector shipped in models/default from a clean checkout (`make model`).

    python -m ml_core.cli.default_model [--training ../shared/training] [--videos ../shared/videos]
                                    [--run-dir var/default-model] [--out models/default]

Steps: train with RECIPE (ml_core.cli.train) on the labelled public clips, evaluate the best epoch
on the identity-disjoint test split it never tuned on (ml_core.cli.evaluate), export the weights as
float16 (ml_core.model.export), and write the model card (MODEL_CARD.md) and the test figures
(metrics.json) beside them. The split is made from the seed, so the test clips are the same on
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

logger = logging.getLogger("ml_core.cli.default_model")

ROOT = Path(__file__).resolve().parents[2]

# The recipe, as ml_core.cli.train arguments (data, output and cache folders are added by `main`).
# Why each choice: see the ablations in models/default/MODEL_CARD.md.
RECIPE = [
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
    "--val-fraction", "0.15",
    "--test-fraction", "0.25",
    "--seed", "0",
]  # fmt: skip


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


def false_positive_rate(scores, threshold) -> float:
    reals = [s["p_fake"] for s in scores if s["label"] == "REAL"]
    return float(np.mean(np.array(reals) >= threshold)) if reals else float("nan")


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
    started = time.perf_counter()
    train.main(RECIPE + data + common + device + threads + ["--out", str(run_dir)])
    train_seconds = time.perf_counter() - started
    report = evaluate.main(
        data
        + common
        + device
        + [
            "--checkpoint", str(run_dir / "best.pt"),
            "--split", str(run_dir / "split.json"),
            "--subset", "test",
            "--fakes", "dataset",
            "--cache-frames", "32",
            "--out", str(run_dir / "test"),
        ]
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    _, _, size, sha256 = export_checkpoint(run_dir / "best.pt", out / "detector.pt")
    checkpoint = torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)
    facts = {
        "sha256": sha256,
        "bytes": size,
        "data_manifest_sha256": manifest_sha256([args.training, args.videos]),
        "recipe": RECIPE,
        "config": checkpoint["config"],
        "validation": checkpoint.get("metrics", {}),
        "split_counts": json.loads((run_dir / "config.json").read_text())["data"]["split"],
        "train_seconds": round(train_seconds),
        "device": str(args.device or ("cuda" if torch.cuda.is_available() else "cpu")),
        "environment": {"python": platform.python_version(), "torch": torch.__version__},
        "test": slim_report(report),
    }
    write_json(out / "metrics.json", json_safe(facts))
    logger.info(
        "wrote %s (%.1f MB, sha256 %s) and %s", out / "detector.pt", size / 1e6, sha256, out / "metrics.json"
    )
    return facts


if __name__ == "__main__":
    main()
