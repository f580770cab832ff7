"""Scoring a checkpoint on a dataset, and the report the field expects (see ml_core.cli.evaluate)."""

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch

from ml_core.crop_recipe import detection_for
from ml_core.errors import UsageError
from ml_core.io import write_json
from ml_core.media.compression import PRESETS, reencode
from ml_core.model.checkpoints import load_checkpoint
from ml_core.training import metrics
from ml_core.training.cache import CacheConfig, VideoCache
from ml_core.training.clips import ClipDataset, build_samples
from ml_core.training.datasets import merge
from ml_core.training.engine import Amp
from ml_core.training.engine import evaluate as evaluate_clips
from ml_core.training.run import load_data, sbi_config_from
from ml_core.training.splits import load_split

logger = logging.getLogger(__name__)


def _select(items, args):
    if args.subset == "all" and not args.split:
        return items
    if not args.split:
        raise UsageError("--subset needs --split (the split.json written by training); or use --subset all")
    split = load_split(args.split)
    if args.subset == "all":
        return [item for item in items if item.video_id in split.assignments]
    return split.select(items, args.subset)


def score_checkpoint(path, items, args, device):
    """Score every video in `items` with one checkpoint. Returns (loaded, report, unusable)."""
    loaded = load_checkpoint(path, map_location=device)
    config = loaded.config
    frames = args.frames or config.sequence_length
    cache_frames = args.cache_frames or min(100, max(20, frames))
    # The checkpoint's own crop recipe; --detector: an explicit other. The cache makes fast boxes
    # only: an exact-box (reference) recipe is evaluated on fast boxes from the default detection.
    recipe = config.crop_recipe
    if recipe.boxes == "exact":
        detector, contrast = detection_for("fast", args.detector, None)
        recipe = dataclasses.replace(recipe, boxes="fast", detector=detector, contrast=contrast)
    elif args.detector:
        recipe = dataclasses.replace(recipe, detector=args.detector)
    cache = VideoCache(
        args.cache_dir or Path(args.out) / "cache", CacheConfig.from_recipe(recipe, cache_frames)
    )
    cache.build(items, workers=args.cache_workers, progress=not args.no_progress)
    usable = [item for item in items if cache.status(item) == "ok"]
    unusable = [
        {
            "video_id": item.video_id,
            "label": item.label,
            "status": cache.status(item),
            "message": (cache.entry(item) or {}).get("message", ""),
        }
        for item in items
        if cache.status(item) != "ok"
    ]
    samples = build_samples(usable, args.fakes, fakes_per_video=args.fakes_per_video)
    dataset = ClipDataset(
        samples, cache, config, frames=frames, train=False, seed=args.seed, sbi_config=sbi_config_from(args)
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=False)
    threshold = args.threshold if args.threshold is not None else config.threshold
    amp = Amp(device.type == "cuda", torch.bfloat16, device.type)
    report = evaluate_clips(
        loaded.model, loader, device, amp=amp, threshold=threshold, progress=not args.no_progress
    )
    report["frames_per_video"] = frames
    return loaded, report, unusable


def recompressed(items, compression, folder, workers=1):
    """The same videos re-encoded with `compression` (made once, kept in `folder`).

    Each copy keeps its item's id, label and identities, so reports line up with the clean run.
    Copies are named by a hash of the source path and re-made when the source changes size.
    Returns (copies, failures): a video that cannot be re-encoded is left out and listed with
    the reason (as `score_checkpoint` lists videos it cannot score) instead of ending the run.
    """
    import dataclasses
    import hashlib
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    jobs, result, failures = [], [], []
    for item in items:
        source = Path(item.path)
        key = hashlib.sha1(f"{source.resolve()}|{source.stat().st_size}".encode(), usedforsecurity=False)
        target = folder / f"{key.hexdigest()[:20]}.mp4"
        if not target.is_file():
            jobs.append((item, str(target)))
        result.append(dataclasses.replace(item, path=str(target)))
    if jobs:
        logger.info("re-encoding %d videos with %s into %s", len(jobs), compression, folder)
        # spawn, as the crop cache: a forked child would inherit torch's thread pools.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context) as pool:
            futures = [(item, pool.submit(reencode, item.path, dst, compression)) for item, dst in jobs]
            for item, future in futures:
                try:
                    future.result()
                except Exception as exc:  # one bad video must not end the evaluation
                    logger.warning("%s: cannot re-encode with %s: %s", item.video_id, compression, exc)
                    failures.append(
                        {
                            "video_id": item.video_id,
                            "label": item.label,
                            "status": "not_recompressed",
                            "message": f"{type(exc).__name__}: {exc}",
                        }
                    )
    failed = {failure["video_id"] for failure in failures}
    return [item for item in result if item.video_id not in failed], failures


def breakdowns(scores: list[dict], threshold: float) -> dict:
    """Per manipulation method (that method's fakes against all reals) and per source."""
    reals = [s for s in scores if s["label"] == "REAL"]
    result = {"method": {}, "source": {}}
    for method in sorted({s["method"] for s in scores if s["label"] == "FAKE"}):
        subset = reals + [s for s in scores if s["label"] == "FAKE" and s["method"] == method]
        result["method"][method] = _summary(subset, threshold)
    for source in sorted({s["source"] for s in scores}):
        result["source"][source] = _summary([s for s in scores if s["source"] == source], threshold)
    return result


def _summary(subset, threshold):
    y = np.array([s["label"] == "FAKE" for s in subset], dtype=np.int64)
    p = np.array([s["p_fake"] for s in subset])
    predicted = (p >= threshold).astype(np.int64)
    return {
        "count": len(subset),
        "fakes": int(y.sum()),
        "auc": metrics.roc_auc(y, p),
        "accuracy": metrics.accuracy(y, predicted),
        "balanced_accuracy": metrics.balanced_accuracy(y, predicted),
    }


def compare(first: dict, second: dict, bootstrap: int, seed: int) -> dict:
    """McNemar and bootstrap AUC difference on the clips both checkpoints scored."""
    key = lambda s: (s["video_id"], s["self_blended"])  # noqa: E731
    a = {key(s): s for s in first["scores"]}
    b = {key(s): s for s in second["scores"]}
    shared = sorted(set(a) & set(b))
    y = np.array([a[k]["label"] == "FAKE" for k in shared], dtype=np.int64)
    pa = np.array([a[k]["p_fake"] for k in shared])
    pb = np.array([b[k]["p_fake"] for k in shared])
    correct_a = (pa >= first["threshold"]).astype(np.int64) == y
    correct_b = (pb >= second["threshold"]).astype(np.int64) == y
    return {
        "videos": len(shared),
        "only_in_first": len(set(a) - set(b)),
        "only_in_second": len(set(b) - set(a)),
        "auc_first": metrics.roc_auc(y, pa),
        "auc_second": metrics.roc_auc(y, pb),
        "auc_difference": metrics.bootstrap_auc_difference(y, pa, pb, samples=bootstrap, seed=seed),
        "mcnemar": metrics.mcnemar(correct_a, correct_b).to_dict(),
    }


def json_safe(value):
    """NaN (undefined metrics) as null, so the report is strict JSON."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, (np.integer, np.floating)):
        return json_safe(value.item())
    return value


def plot_roc(path, curves):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5), dpi=100)
    for name, report in curves:
        y = np.array([s["label"] == "FAKE" for s in report["scores"]], dtype=np.int64)
        p = np.array([s["p_fake"] for s in report["scores"]])
        fpr, tpr, _ = metrics.roc_curve(y, p)
        axes.plot(fpr, tpr, label=f"{name} (AUC {report['video']['auc']:.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    axes.set(xlabel="False positive rate (reals called fake)", ylabel="True positive rate (fakes caught)")
    axes.set_title("Video-level ROC")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def plot_confusion(path, matrix, threshold):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    figure, axes = plt.subplots(figsize=(4, 4), dpi=100)
    axes.imshow(matrix, cmap="Blues")
    for (row, column), value in np.ndenumerate(matrix):
        colour = "white" if value > matrix.max() / 2 else "black"
        axes.text(column, row, str(value), ha="center", va="center", color=colour, fontsize=14)
    axes.set_xticks([0, 1], ["REAL", "FAKE"])
    axes.set_yticks([0, 1], ["REAL", "FAKE"])
    axes.set(xlabel="Predicted", ylabel="True", title=f"Confusion matrix (threshold {threshold:.3f})")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def evaluate(args):
    """Score the checkpoint(s) as the parsed `args` (ml_core.cli.evaluate) say; write, return the report."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    datasets = [load_data(path, args) for path in args.data]
    dataset = merge(datasets)
    items = _select(dataset.items, args)
    if args.fakes == "self-blended":
        items = [item for item in items if not item.is_fake]
    if not items:
        raise UsageError("no videos to evaluate")
    not_recompressed = []
    if args.recompress:
        folder = Path(args.cache_dir or out / "cache") / "recompressed" / args.recompress
        items, not_recompressed = recompressed(items, PRESETS[args.recompress], folder, args.cache_workers)
    loaded, report, unusable = score_checkpoint(args.checkpoint, items, args, device)
    unusable = not_recompressed + unusable
    scores = report["scores"]
    result = {
        "checkpoint": {
            "name": loaded.name,
            "sha256": loaded.sha256,
            "kind": loaded.kind,
            "path": str(args.checkpoint),
        },
        "data": {
            "datasets": args.data,
            "subset": args.subset,
            "split": args.split,
            "fakes": args.fakes,
            "recompressed": PRESETS[args.recompress].to_dict() if args.recompress else None,
        },
        "videos": len(items) + len(not_recompressed),
        "scored": len(scores),
        "threshold": report["threshold"],
        "frames_per_video": report["frames_per_video"],
        "video": report["video"],
        "frame": report["frame"],
        "no_face": {"count": len(unusable), "videos": unusable},
        "breakdown": breakdowns(scores, report["threshold"]),
    }
    curves = [(loaded.name, report)]
    if args.compare:
        other, other_report, other_unusable = score_checkpoint(args.compare, items, args, device)
        other_unusable = not_recompressed + other_unusable
        result["compare"] = {
            "checkpoint": {"name": other.name, "sha256": other.sha256, "kind": other.kind},
            "video": other_report["video"],
            "frame": other_report["frame"],
            "no_face": {"count": len(other_unusable), "videos": other_unusable},
            **compare(report, other_report, args.bootstrap, args.seed),
        }
        curves.append((other.name, other_report))
        result["compare"]["scores"] = other_report["scores"]
    result["scores"] = scores
    plot_roc(out / "roc.png", curves)
    plot_confusion(out / "confusion_matrix.png", report["video"]["confusion_matrix"], report["threshold"])
    write_json(out / "report.json", json_safe(result), allow_nan=False)
    return result
