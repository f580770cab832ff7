"""Identity-disjoint k-fold cross-validation of a training recipe: the model card's mean ± spread.

    python -m ml_core.cli.cross_validate [--recipe lite0] [--folds 5] [--epochs N]
                                         [--run-dir var/cv] [--training ../shared/training]

One test split of ~47 clips moves a per-method AUC by 0.05-0.1 per video. Here every clip of the
labelled public data is tested once, by a model that never saw its person: the clips' identity
groups are dealt to `--folds` parts (ml_core.training.splits.make_folds); fold i trains the recipe
on the other parts less one, which chooses its epoch and threshold, and is tested on part i, as
shipped and re-encoded at c40. Prints and writes (RUN_DIR/RECIPE/summary.json) each figure's mean,
spread and range over the folds, and the figures of all out-of-fold scores pooled. A finished fold
is not run again and an interrupted one resumes, so the command can be stopped and restarted.

Each fold's validation part is scored too (clean and c40, as evaluate does), so the operating
rule can be chosen by cross-validation as well: for each false-FAKE target in RULES, the
threshold that target gives on a fold's validation reals, and the false-positive and detection
rates it gives on that fold's test clips ("threshold_rules" in the summary).
"""

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from ml_core.cli import exits_on_usage_error, train
from ml_core.cli.default_model import (
    RECIPES,
    ROOT,
    false_positive_rate,
    share_at_or_above,
    slim_report,
    test_reports,
)
from ml_core.io import write_json
from ml_core.training import metrics
from ml_core.training.datasets import merge
from ml_core.training.evaluation import json_safe
from ml_core.training.run import load_data
from ml_core.training.splits import load_split, make_folds, save_split

logger = logging.getLogger("ml_core.cli.cross_validate")

FF_METHODS = ("Deepfakes", "FaceSwap", "Face2Face", "NeuralTextures")

# False-FAKE targets on validation reals to compare (the recipe's --max-fpr is one of them).
RULES = (0.2, 0.1, 0.05, 0.0)


def get_args_parser():
    parser = argparse.ArgumentParser(description="Identity-disjoint k-fold cross-validation of a recipe")
    parser.add_argument("--recipe", default="lite0", choices=tuple(RECIPES))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="seed of the fold assignment")
    parser.add_argument(
        "--epochs", type=int, default=None, help="override the recipe's epoch count (say so when quoting)"
    )
    parser.add_argument("--training", default=str(ROOT.parent / "shared" / "training"))
    parser.add_argument("--videos", default=str(ROOT.parent / "shared" / "videos"))
    parser.add_argument("--run-dir", default=str(ROOT / "var" / "cv"))
    parser.add_argument("--cache-dir", default=None, help="face crop cache (default RUN_DIR/cache)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--no-progress", action="store_true")
    return parser


def fold_splits(recipe_args, data, folder: Path, folds: int, seed: int) -> list[Path]:
    """The folds' split files in FOLDER/fold<i>/split.json, made once (reused when present)."""
    paths = [folder / f"fold{index}" / "split.json" for index in range(folds)]
    if all(path.is_file() for path in paths):
        return paths
    args = train.get_args_parser().parse_args(recipe_args + data + ["--out", str(folder)])
    items = merge([load_data(path, args) for path in args.data]).items
    for path, split in zip(paths, make_folds(items, folds=folds, seed=seed), strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        save_split(split, path)
    return paths


def detection_rate(scores, threshold) -> float:
    return share_at_or_above(scores, threshold, "FAKE")


def fold_figures(report: dict) -> dict:
    """The figures one fold's test report contributes (NaN where its part has no such clips)."""
    threshold = report["threshold"]
    ffpp = report["faceforensics"]
    figures = {
        "auc": report["video"]["auc"],
        "faceforensics_auc": ffpp["auc"],
        "false_positive_rate_real": report["false_positive_rate_real"],
        "detection_rate": detection_rate(report["scores"], threshold),
    }
    for method in FF_METHODS:
        figures[f"faceforensics_{method}_auc"] = ffpp["method"].get(method, {}).get("auc", float("nan"))
    return figures


def pooled_figures(reports: list[dict]) -> dict:
    """All folds' out-of-fold test scores as one set: each clip judged by a model blind to its person.

    AUC over pooled scores mixes models (each with its own scale), so it is quoted beside the
    per-fold mean, not instead of it; the FAKE/REAL decisions use each fold's own threshold.
    """
    scores = [dict(s, fake_call=s["p_fake"] >= r["threshold"]) for r in reports for s in r["scores"]]

    def auc(selected):
        y = np.array([s["label"] == "FAKE" for s in selected], dtype=np.int64)
        return metrics.roc_auc(y, np.array([s["p_fake"] for s in selected])) if 0 < y.sum() < y.size else None

    reals = [s for s in scores if s["label"] == "REAL"]
    fakes = [s for s in scores if s["label"] == "FAKE"]
    ffpp = [s for s in scores if s["source"].endswith("ffpp")]
    figures = {
        "count": len(scores),
        "reals": len(reals),
        "fakes": len(fakes),
        "auc": auc(scores),
        "faceforensics_auc": auc(ffpp),
        "false_positive_rate_real": float(np.mean([s["fake_call"] for s in reals])) if reals else None,
        "detection_rate": float(np.mean([s["fake_call"] for s in fakes])) if fakes else None,
        "method_auc": {},
    }
    ff_reals = [s for s in ffpp if s["label"] == "REAL"]
    for method in sorted({s["method"] for s in fakes if s["method"]}):
        # FaceForensics++ methods against FF++ reals (same source); other datasets against all reals.
        base = ff_reals if method in FF_METHODS else reals
        figures["method_auc"][method] = auc(base + [s for s in fakes if s["method"] == method])
    return figures


def rule_figures(validation: dict, test: dict, max_fpr: float) -> dict:
    """One fold under one threshold rule: chosen on its validation scores (clean + c40, as
    training's validate does), applied to its test scores (clean and c40)."""
    scores = validation["clean"]["scores"] + validation["c40"]["scores"]
    y = np.array([s["label"] == "FAKE" for s in scores], dtype=np.int64)
    threshold, _ = metrics.operating_threshold(y, np.array([s["p_fake"] for s in scores]), max_fpr)
    figures = {"threshold": threshold}
    for name in ("clean", "c40"):
        figures[f"false_positive_rate_real_{name}"] = false_positive_rate(test[name]["scores"], threshold)
        figures[f"detection_rate_{name}"] = detection_rate(test[name]["scores"], threshold)
    return figures


def summarise(per_fold: list[dict]) -> dict:
    """Mean, sample standard deviation, min and max of every figure over the folds that have it."""
    summary = {}
    for key in per_fold[0]:
        values = np.array([fold[key] for fold in per_fold], dtype=float)
        values = values[~np.isnan(values)]
        if values.size == 0:
            continue
        summary[key] = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
            "min": float(values.min()),
            "max": float(values.max()),
            "folds": int(values.size),
        }
    return summary


@exits_on_usage_error
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    folder = Path(args.run_dir) / args.recipe
    recipe = RECIPES[args.recipe] + (["--epochs", str(args.epochs)] if args.epochs else [])
    data = ["--data", args.training, "--data", args.videos]
    cache_dir = args.cache_dir or str(Path(args.run_dir) / "cache")
    common = ["--cache-dir", cache_dir] + (["--no-progress"] if args.no_progress else [])
    device = ["--device", args.device] if args.device else []
    reports, validations = {"clean": [], "c40": []}, []
    for index, split_path in enumerate(fold_splits(recipe, data, folder, args.folds, args.seed)):
        fold_dir = split_path.parent
        result = fold_dir / "test.json"
        if not result.is_file():
            logger.info("fold %d of %d: %s", index + 1, args.folds, load_split(split_path).notes)
            resume = ["--resume"] if (fold_dir / "last.pt").is_file() else []
            cores = ["--cache-workers", str(os.cpu_count() or 1)]
            train.main(recipe + data + common + cores + device + resume + ["--out", str(fold_dir)])
            tested = test_reports(fold_dir / "best.pt", fold_dir, data, common, device)
            write_json(result, json_safe({name: slim_report(report) for name, report in tested.items()}))
        scored_validation = fold_dir / "val.json"
        if not scored_validation.is_file():
            tested = test_reports(fold_dir / "best.pt", fold_dir, data, common, device, subset="val")
            write_json(scored_validation, json_safe({name: slim_report(r) for name, r in tested.items()}))
        fold = json.loads(result.read_text())
        for name in reports:
            reports[name].append(fold[name])
        validations.append(json.loads(scored_validation.read_text()))
    summary = {
        "recipe": args.recipe,
        "recipe_args": recipe,
        "folds": args.folds,
        "seed": args.seed,
        "test_clips": [report["video"]["count"] for report in reports["clean"]],
        **{
            name: {
                "per_fold": [fold_figures(report) for report in folds],
                "summary": summarise([fold_figures(report) for report in folds]),
                "pooled": pooled_figures(folds),
            }
            for name, folds in reports.items()
        },
        "threshold_rules": {
            f"max_fpr={rule:g}": summarise(
                [
                    rule_figures(validation, {name: reports[name][index] for name in reports}, rule)
                    for index, validation in enumerate(validations)
                ]
            )
            for rule in RULES
        },
    }
    write_json(folder / "summary.json", json_safe(summary))
    for name in reports:
        line = ", ".join(
            f"{key} {value['mean']:.3f} ± {value['std']:.3f}"
            for key, value in summary[name]["summary"].items()
        )
        print(f"{name}: {line}; pooled AUC {summary[name]['pooled']['auc']:.3f}", flush=True)
    for rule, figures in summary["threshold_rules"].items():
        line = ", ".join(f"{key} {value['mean']:.3f} ± {value['std']:.3f}" for key, value in figures.items())
        print(f"threshold rule {rule}: {line}", flush=True)
    return summary


if __name__ == "__main__":
    main()
