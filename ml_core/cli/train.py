"""Train or fine-tune a detector with one command.

    python -m ml_core.cli.train --data DATASET [--data ANOTHER] --out RUN_DIR [options]

Steps: read the dataset(s) (ml_core.training.datasets), cache the face crops once
(ml_core.training.cache), make or reuse a seeded, stratified, identity-disjoint split
(ml_core.training.splits), then train with AdamW,
a cosine schedule with warm-up, class weighting, augmentation and (on CUDA) mixed precision,
evaluating video AUC on the validation split after every epoch. RUN_DIR receives:

    config.json   the resolved configuration (arguments, detector, augmentation, cache, data)
    split.json    the split, reusable with --split for a repeatable run
    last.pt       everything needed to resume (--resume)
    best.pt       the best epoch by validation video AUC, in our checkpoint format, with its
                  validation metrics and the threshold that maximises balanced accuracy
    history.jsonl one line per epoch

`--fakes self-blended` trains from real videos alone: every real training clip is also shown as
a self-blended fake (ml_core.training.sbi), and the validation set gets one fixed self-blended fake per
validation real video. `--fakes both` mixes those with the dataset's own fakes.

Layout follows torchvision's references/classification: get_args_parser(), train_one_epoch(),
evaluate(), main(args).
"""

import argparse
import dataclasses
import json
import logging
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ml_core.model.checkpoints import atomic_save, load_checkpoint, save_checkpoint
from ml_core.model.detector import DeepfakeDetector, DetectorConfig
from ml_core.model.transforms import crops_to_tensor
from ml_core.training import metrics
from ml_core.training.augment import NO_AUGMENTATION, PRESETS, AugmentConfig, augment_clip
from ml_core.training.cache import CacheConfig, VideoCache
from ml_core.training.datasets import VideoItem, load_dataset, merge
from ml_core.training.sbi import SBIConfig, self_blend_clip
from ml_core.training.seeding import derive_seed, rng_for, seed_everything, worker_init_fn
from ml_core.training.splits import split_for

logger = logging.getLogger("ml_core.cli.train")

SBI_SOURCE = "self-blended"


def load_data(path, args):
    """The dataset at `path` as --layout/--compression/--identity-pattern say; a clear exit otherwise."""
    try:
        return load_dataset(
            path, args.layout, compression=args.compression, identity_pattern=args.identity_pattern
        )
    except ValueError as exc:
        raise SystemExit(f"--data {path}: {exc}") from exc


def get_args_parser(add_help=True):
    parser = argparse.ArgumentParser(description="Train a deepfake video detector", add_help=add_help)
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data", action="append", required=True, help="dataset folder or label CSV (repeatable)"
    )
    data.add_argument(
        "--layout", default="auto", choices=("auto", "folder", "csv", "celebdf", "ffpp", "dfdc")
    )
    data.add_argument("--compression", default="c23", help="FaceForensics++ compression (raw, c23, c40)")
    data.add_argument(
        "--identity-pattern",
        default=None,
        help="regex on file names whose groups name the person (folder/CSV layouts), for splits",
    )
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
        default="hog+mtcnn",
        choices=("hog+mtcnn", "hog", "mtcnn", "cnn"),
        help="face detector used at cache time",
    )
    data.add_argument(
        "--split", default=None, help="split file to reuse (default: RUN_DIR/split.json, made if absent)"
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
        choices=("dataset", "self-blended", "both"),
        help="fakes to train on: the dataset's, self-blended ones made from its real videos, or both",
    )
    data.add_argument(
        "--val-fakes",
        default=None,
        choices=("dataset", "self-blended", "both"),
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
    model.add_argument(
        "--backbone", default="resnext50_32x4d", choices=("resnext50_32x4d", "small", "residual", "tiny")
    )
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


# Data --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    item: VideoItem
    self_blended: bool = False  # show this real video as a self-blended fake
    repeat: int = 0  # which draw of this video in an epoch (--repeats)

    @property
    def label(self) -> str:
        return "FAKE" if self.self_blended or self.item.is_fake else "REAL"

    @property
    def key(self) -> str:
        return self.item.video_id + ("#self-blended" if self.self_blended else "")

    @property
    def source(self) -> str:
        return SBI_SOURCE if self.self_blended else (self.item.source or "")

    @property
    def method(self) -> str:
        return SBI_SOURCE if self.self_blended else (self.item.method or "real")


def build_samples(
    items: list[VideoItem], fakes: str, repeats: int = 1, fakes_per_video: int = 1
) -> list[Sample]:
    """Which clips a split shows, given the --fakes choice.

    A real video's self-blended twin directly follows it (see `paired_batches`). Evaluation may
    ask for several self-blended fakes per real video (`fakes_per_video`, told apart by `repeat`).
    """
    samples = []
    for repeat in range(max(1, repeats)):
        for item in items:
            if item.is_fake:
                if fakes in ("dataset", "both"):
                    samples.append(Sample(item, repeat=repeat))
                continue
            samples.append(Sample(item, repeat=repeat))
            if fakes in ("self-blended", "both"):
                copies = range(max(1, fakes_per_video)) if repeats <= 1 else [repeat]
                samples.extend(Sample(item, self_blended=True, repeat=copy) for copy in copies)
    return samples


def paired_batches(samples: list[Sample], batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """Shuffled batches that keep each real clip with its self-blended twin and its dataset fakes.

    As in the SBI paper, the detector then sees the same face with and without the blend in one
    step, so it has to learn the blending traces rather than who is in the video. A dataset fake
    that names its original (FaceForensics++: the same scene with another face) joins that
    original's unit for the same reason.
    """
    families: dict[tuple[str, int], list[int]] = {}
    for index, sample in enumerate(samples):
        family = sample.item.original or sample.item.video_id
        families.setdefault((family, sample.repeat), []).append(index)
    units = []
    for members in families.values():
        units.extend(members[i : i + batch_size] for i in range(0, len(members), batch_size))
    order = torch.randperm(len(units), generator=generator).tolist()
    batches, current = [], []
    for unit in order:
        if current and len(current) + len(units[unit]) > batch_size:
            batches.append(current)
            current = []
        current.extend(units[unit])
    if current:
        batches.append(current)
    return batches


def frame_positions(
    available: int, wanted: int, rng: np.random.Generator | None, sampling: str
) -> np.ndarray:
    """Indices into a video's cached crops: random when `rng` is given (training), else fixed.

    Videos with fewer crops than wanted repeat their crops in order, so every clip in a batch
    has the same length.
    """
    if available >= wanted:
        if rng is None:
            return np.linspace(0, available - 1, wanted).round().astype(np.int64)
        if sampling == "contiguous":
            start = int(rng.integers(0, available - wanted + 1))
            return np.arange(start, start + wanted)
        return np.sort(rng.choice(available, wanted, replace=False))
    return np.sort(np.resize(np.arange(available), wanted))


class ClipDataset(torch.utils.data.Dataset):
    """Clips of cached face crops as model input. Returns (x (T, 3, S, S), label index, sample index)."""

    def __init__(
        self,
        samples: list[Sample],
        cache: VideoCache,
        config: DetectorConfig,
        *,
        frames: int,
        train: bool,
        seed: int = 0,
        sampling: str = "contiguous",
        augment: AugmentConfig = NO_AUGMENTATION,
        sbi_config: SBIConfig | None = None,
    ):
        self.samples = samples
        self.cache = cache
        self.config = config
        self.frames = frames
        self.train = train
        self.seed = seed
        self.sampling = sampling
        self.augment = augment
        self.sbi_config = sbi_config or SBIConfig()
        self.epoch = 0

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self):
        return len(self.samples)

    def label_index(self, sample: Sample) -> int:
        return self.config.fake_index if sample.label == "FAKE" else self.config.real_index

    def clip(self, index: int) -> tuple[np.ndarray, int]:
        """(T, S, S, 3) uint8 BGR crops for one sample, and how many fell back to the ellipse mask."""
        sample = self.samples[index]
        video = self.cache.load(sample.item)
        if video is None:
            raise RuntimeError(f"{sample.item.video_id} has no cached face crops")
        # Training draws new frames, fakes and augmentation every epoch; validation is fixed so
        # epochs are compared on the same inputs. A real clip and its self-blended twin share their
        # frames and augmentation: they differ only by the blend.
        draw = (self.seed, self.epoch, sample.item.video_id, sample.repeat)
        positions = frame_positions(
            len(video.crops), self.frames, rng_for("frames", *draw) if self.train else None, self.sampling
        )
        crops = video.crops[positions]
        fallbacks = 0
        if sample.self_blended:
            if self.train:
                sbi_rng = rng_for("sbi", *draw)
            else:
                # The first fake of a video is drawn as before extra copies existed.
                extra = (sample.repeat,) if sample.repeat else ()
                sbi_rng = rng_for(self.seed, "eval-sbi", sample.key, *extra)
            crops, fallbacks = self_blend_clip(
                crops, video.landmarks[positions], sbi_rng, self.sbi_config, video.face_boxes[positions]
            )
        if self.train:
            crops = augment_clip(crops, rng_for("augment", *draw), self.augment)
        return crops, fallbacks

    def __getitem__(self, index):
        crops, fallbacks = self.clip(index)
        x = crops_to_tensor(
            list(crops),
            size=self.config.image_size,
            channel_order=self.config.channel_order,
            mean=self.config.mean,
            std=self.config.std,
        )  # (T, 3, S, S)
        return x, self.label_index(self.samples[index]), index, fallbacks


def sbi_config_from(args) -> SBIConfig:
    """The self-blending settings chosen on the command line (the defaults otherwise)."""
    changes = {}
    if getattr(args, "sbi_blend_ratios", None):
        changes["blend_ratios"] = tuple(args.sbi_blend_ratios)
    if getattr(args, "sbi_colour_shift", None) is not None:
        changes["colour_shift"] = args.sbi_colour_shift
    return dataclasses.replace(SBIConfig(), **changes)


# Model -------------------------------------------------------------------------------------


def build_config(args) -> DetectorConfig:
    # The clip length the model is validated on is the one inference and evaluation should use.
    length = args.eval_frames or args.frames
    # The crops come from ml_core.training.cache, which extracts with the fast boxes: inference must too.
    overrides = {"dropout": args.dropout, "margin": args.margin, "face_boxes": "fast"}
    if args.hidden_size:
        overrides["hidden_size"] = args.hidden_size
    if args.image_size:
        overrides["image_size"] = args.image_size
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
        config = dataclasses.replace(
            loaded.config, sequence_length=args.eval_frames or args.frames, dropout=args.dropout
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
    return model, config, origin


def cosine_with_warmup(optimizer, warmup_steps: int, total_steps: int, min_ratio: float):
    def factor(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def class_weights(samples: list[Sample], config: DetectorConfig) -> torch.Tensor:
    """Inverse-frequency weights indexed like the model's classes."""
    fakes = sum(sample.label == "FAKE" for sample in samples)
    reals = len(samples) - fakes
    weights = torch.ones(2)
    if fakes and reals:
        weights[config.fake_index] = len(samples) / (2 * fakes)
        weights[config.real_index] = len(samples) / (2 * reals)
    return weights


# Loops -------------------------------------------------------------------------------------


@dataclass
class Amp:
    enabled: bool
    dtype: torch.dtype
    device_type: str

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.enabled)


def train_one_epoch(model, criterion, optimizer, scheduler, loader, device, epoch, *, amp, scaler, args):
    """One pass over the training clips; returns mean loss, accuracy and SBI fallback count."""
    model.train()
    from tqdm import tqdm

    total_loss, correct, seen, fallbacks = 0.0, 0, 0, 0
    optimizer.zero_grad(set_to_none=True)
    bar = tqdm(loader, desc=f"epoch {epoch + 1}", unit="batch", disable=args.no_progress, leave=False)
    for step, (x, target, _, fell_back) in enumerate(bar):
        x = x.to(device, non_blocking=True)  # (B, T, 3, S, S)
        target = target.to(device)
        with amp.autocast():
            video_logits, frame_logits = model(x)  # (B, 2), (B, T, 2)
            loss = criterion(video_logits.float(), target)
            if args.frame_loss:
                # Every frame of a clip carries the clip's label (self-blended clips are blended
                # in every frame).
                frame_target = target[:, None].expand(frame_logits.shape[:2])  # (B, T)
                loss = loss + args.frame_loss * criterion(
                    frame_logits.flatten(0, 1).float(), frame_target.flatten()
                )
        scaler.scale(loss / args.accum_steps).backward()
        last_batch = step + 1 == len(loader)
        if (step + 1) % args.accum_steps == 0 or last_batch:
            if args.clip_grad:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
        total_loss += loss.item() * len(target)
        correct += (video_logits.argmax(1) == target).sum().item()
        seen += len(target)
        fallbacks += int(fell_back.sum())
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
    return {
        "loss": total_loss / max(seen, 1),
        "accuracy": correct / max(seen, 1),
        "sbi_ellipse_frames": fallbacks,
    }


@torch.inference_mode()
def predict(model, loader, device, *, amp, progress=False):
    """Fake probabilities for every clip of `loader` (in sample order).

    Returns (video p_fake (N,), frame p_fake (N, T), sample indices (N,)).
    """
    from tqdm import tqdm

    model.eval()
    fake = model.config.fake_index
    videos, frames, indices = [], [], []
    for x, _, index, _ in tqdm(loader, desc="evaluating", unit="batch", disable=not progress, leave=False):
        with amp.autocast():
            video_logits, frame_logits = model(x.to(device))  # (B, 2), (B, T, 2)
        videos.append(video_logits.float().softmax(-1)[:, fake].cpu())
        frames.append(frame_logits.float().softmax(-1)[..., fake].cpu())
        indices.append(index)
    if not videos:
        return np.zeros(0), np.zeros((0, 0)), np.zeros(0, dtype=np.int64)
    return torch.cat(videos).numpy(), torch.cat(frames).numpy(), torch.cat(indices).numpy()


def evaluate(model, loader, device, *, amp, threshold=None, progress=False) -> dict:
    """Video- and frame-level metrics on `loader`'s clips.

    When `threshold` is None the one that maximises balanced accuracy on these clips is chosen
    (validation); evaluation of a finished model passes the checkpoint's threshold instead.
    """
    video_p, frame_p, indices = predict(model, loader, device, amp=amp, progress=progress)
    dataset = loader.dataset
    samples = [dataset.samples[i] for i in indices]
    y = np.array([sample.label == "FAKE" for sample in samples], dtype=np.int64)
    chosen, best_balanced = metrics.threshold_for_balanced_accuracy(y, video_p)
    if threshold is None:
        threshold = chosen
    report = {"video": metrics.binary_report(y, video_p, threshold)}
    report["video"]["best_balanced_accuracy"] = best_balanced
    frame_y = np.repeat(y, frame_p.shape[1]) if frame_p.size else np.zeros(0, np.int64)
    report["frame"] = {
        "auc": metrics.roc_auc(frame_y, frame_p.ravel()),
        "count": int(frame_p.size),
    }
    report["threshold"] = float(threshold)
    report["scores"] = [
        {
            "video_id": sample.item.video_id,
            "self_blended": sample.self_blended,
            "label": sample.label,
            "source": sample.source,
            "method": sample.method,
            "p_fake": float(p),
            "frame_p_fake": [float(v) for v in frames_of],
        }
        for sample, p, frames_of in zip(samples, video_p, frame_p)
    ]
    return report


# Main --------------------------------------------------------------------------------------


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _write_json(path: Path, data):
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_json_default, allow_nan=True))
    os.replace(tmp, path)


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
        raise SystemExit("no videos found in " + ", ".join(args.data))
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
    return dataset, items, cache, split, unusable, summary


def main(args=None):
    """Train. `args`: parsed arguments, or a list of command-line strings (None: sys.argv)."""
    if args is None or isinstance(args, (list, tuple)):
        args = get_args_parser().parse_args(args)
    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    file_handler = _configure_logging(run_dir)
    try:
        return _train(args, run_dir)
    finally:
        logging.getLogger().removeHandler(file_handler)
        file_handler.close()


def _train(args, run_dir: Path):
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed, deterministic=args.deterministic)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    eval_frames = args.eval_frames or args.frames
    if args.accum_steps < 1 or args.frames < 1 or args.batch_size < 1:
        raise SystemExit("--accum-steps, --frames and --batch-size must be at least 1")

    model, config, origin = build_model(args)
    if config.margin != args.margin and args.init_checkpoint:
        logger.info("crop margin %.2f taken from the initial checkpoint", config.margin)
    cache_config = CacheConfig(
        frames=args.cache_frames, detector=args.detector, margin=config.margin, crop_size=config.image_size
    )
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
        raise SystemExit(
            f"not enough usable videos: {len(train_samples)} training and {len(val_samples)} validation clips"
        )
    augment = PRESETS["none" if args.no_augment else args.augment]
    sbi_config = sbi_config_from(args)
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
    val_set = ClipDataset(
        val_samples, cache, config, frames=eval_frames, train=False, seed=args.seed, sbi_config=sbi_config
    )
    loader_options = dict(
        batch_size=args.batch_size,
        num_workers=args.workers,
        worker_init_fn=worker_init_fn,
        pin_memory=device.type == "cuda",
    )
    val_loader = torch.utils.data.DataLoader(val_set, shuffle=False, **loader_options)

    model.to(device)
    weights = class_weights(train_samples, config) if args.class_weights == "balanced" else torch.ones(2)
    criterion = nn.CrossEntropyLoss(weight=weights.to(device))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
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
    amp = Amp(amp_enabled, amp_dtype, device.type)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_enabled and amp_dtype == torch.float16)

    resolved = {
        "args": vars(args),
        "detector": config.to_dict(),
        "augment": augment.to_dict(),
        "sbi": dataclasses.asdict(sbi_config) if args.fakes != "dataset" else None,
        "cache": {"folder": str(cache.folder), **cache_config.to_dict(), "summary": cache_summary},
        "data": {
            "datasets": args.data,
            "name": dataset.name,
            "videos": len(items),
            "unusable": [{"video_id": i.video_id, "status": cache.status(i)} for i in unusable],
            "split": split.counts([i for i in items if i.video_id in usable]),
            "train_clips": len(train_samples),
            "val_clips": len(val_samples),
        },
        "class_weights": weights.tolist(),
        "origin": origin,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "device": str(device),
        },
    }
    _write_json(run_dir / "config.json", resolved)

    state = {"epoch": 0, "best_auc": -1.0, "best_epoch": None, "stale_epochs": 0}
    last_path = run_dir / "last.pt"
    if args.resume:
        if not last_path.is_file():
            raise SystemExit(f"--resume: {last_path} does not exist")
        resumed = torch.load(last_path, map_location=device, weights_only=True)
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        scaler.load_state_dict(resumed["scaler"])
        state = resumed["state"]
        logger.info("resumed from %s after epoch %d", last_path, state["epoch"])

    logger.info(
        "training on %s: %d training clips, %d validation clips, %d steps per epoch",
        device,
        len(train_samples),
        len(val_samples),
        steps_per_epoch,
    )
    started = time.perf_counter()
    first_epoch = state["epoch"]
    for epoch in range(first_epoch, args.epochs):
        if state["stale_epochs"] >= args.patience:
            logger.info("early stop: no better validation AUC for %d epochs", args.patience)
            break
        if args.max_minutes and epoch > first_epoch:
            elapsed = time.perf_counter() - started
            if elapsed * (epoch + 1 - first_epoch) / (epoch - first_epoch) > args.max_minutes * 60:
                logger.info("time budget: stopping after %d epochs (%.1f minutes)", epoch, elapsed / 60)
                break
        epoch_started = time.perf_counter()
        train_set.set_epoch(epoch)
        # Shuffle order and dropout depend only on (seed, epoch): a resumed run sees the same.
        torch.manual_seed(derive_seed(args.seed, "epoch", epoch))
        generator = torch.Generator().manual_seed(derive_seed(args.seed, "shuffle", epoch))
        batches = paired_batches(train_samples, args.batch_size, generator)
        train_loader = torch.utils.data.DataLoader(
            train_set,
            batch_sampler=batches,
            num_workers=args.workers,
            worker_init_fn=worker_init_fn,
            pin_memory=device.type == "cuda",
        )
        train_stats = train_one_epoch(
            model,
            criterion,
            optimizer,
            scheduler,
            train_loader,
            device,
            epoch,
            amp=amp,
            scaler=scaler,
            args=args,
        )
        report = evaluate(model, val_loader, device, amp=amp)
        val_auc = report["video"]["auc"]
        improved = not math.isnan(val_auc) and val_auc > state["best_auc"]
        state["epoch"] = epoch + 1
        if improved:
            state.update(best_auc=val_auc, best_epoch=epoch + 1, stale_epochs=0)
            save_best(run_dir / "best.pt", model, config, report, epoch + 1, resolved, origin)
        else:
            state["stale_epochs"] += 1
        atomic_save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "state": state,
                "config": config.to_dict(),
            },
            last_path,
        )
        line = {
            "epoch": epoch + 1,
            "train_loss": train_stats["loss"],
            "train_accuracy": train_stats["accuracy"],
            "sbi_ellipse_frames": train_stats["sbi_ellipse_frames"],
            "val_video_auc": val_auc,
            "val_frame_auc": report["frame"]["auc"],
            "val_balanced_accuracy": report["video"]["balanced_accuracy"],
            "val_threshold": report["threshold"],
            "lr": scheduler.get_last_lr()[0],
            "seconds": round(time.perf_counter() - epoch_started, 1),
            "best": improved,
        }
        with (run_dir / "history.jsonl").open("a") as handle:
            handle.write(json.dumps(line) + "\n")
        logger.info(
            "epoch %d/%d  loss %.4f  train acc %.3f  val video AUC %.4f  frame AUC %.4f  bal acc %.3f%s"
            "  (%.0f s)",
            epoch + 1,
            args.epochs,
            line["train_loss"],
            line["train_accuracy"],
            val_auc,
            line["val_frame_auc"],
            line["val_balanced_accuracy"],
            "  *best*" if improved else "",
            line["seconds"],
        )
    logger.info(
        "done in %.0f s: best validation video AUC %.4f at epoch %s -> %s",
        time.perf_counter() - started,
        state["best_auc"],
        state["best_epoch"],
        run_dir / "best.pt",
    )
    return state


def save_best(path, model, config, report, epoch, resolved, origin):
    """Our checkpoint format, with the validation threshold stored in the config."""
    threshold = min(max(report["threshold"], 1e-4), 1 - 1e-4)  # DetectorConfig wants (0, 1)
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


if __name__ == "__main__":
    main()
