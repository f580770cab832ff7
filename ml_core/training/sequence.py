"""A temporal head trained on a frozen backbone's features, kept only when it beats the frame mean.

The backbone is trained frame by frame (`temporal="reference"`: every frame scored on its own,
the video score the mean). Here its features are computed once for many augmented draws of
every training clip (self-blended twins and re-compression included, as in training), and an
LSTM over the frames (`temporal="sequence"`, batch_first) is trained on them in seconds. Both
are then scored on the same validation clips, clean and after H.264, and the report says which
one wins; the caller keeps the winner.
"""

import argparse
import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ml_core.model.checkpoints import load_checkpoint, save_checkpoint
from ml_core.model.detector import DeepfakeDetector
from ml_core.training import metrics
from ml_core.training.augment import PRESETS
from ml_core.training.cache import CacheConfig
from ml_core.training.clips import ClipDataset, build_samples
from ml_core.training.run import prepare_data, sbi_config_from
from ml_core.training.seeding import derive_seed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SequenceHeadConfig:
    hidden_size: int = 128
    draws: int = 4  # augmented draws of every training clip whose features are cached
    epochs: int = 40
    lr: float = 1e-3
    weight_decay: float = 1e-2
    dropout: float = 0.3
    batch_size: int = 32
    seed: int = 0


@torch.inference_mode()
def clip_features(model: DeepfakeDetector, loader, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Backbone features of every clip in `loader`: (N, T, F) float32 on the CPU, and labels (N,)."""
    model.eval()
    feats, labels = [], []
    for x, target, _, _ in loader:
        b, t = x.shape[:2]
        feats.append(model.features(x.flatten(0, 1).to(device)).float().view(b, t, -1).cpu())
        labels.append(target)
    return torch.cat(feats), torch.cat(labels)


def sequence_model(frame_model: DeepfakeDetector, config: SequenceHeadConfig) -> DeepfakeDetector:
    """A copy of `frame_model` with the same backbone weights and a fresh LSTM head over frames."""
    head_config = dataclasses.replace(
        frame_model.config,
        temporal="sequence",
        lstm_bias=True,
        hidden_size=config.hidden_size,
        dropout=config.dropout,
    )
    model = DeepfakeDetector(head_config)
    model.model.load_state_dict(frame_model.model.state_dict())
    return model


def train_head(model: DeepfakeDetector, feats, labels, config: SequenceHeadConfig, val=None) -> list[dict]:
    """Train `model`'s LSTM and classifier on cached features (N, T, F); the backbone is untouched.

    `val`: (features, labels) scored after every epoch for the history. Returns the history.
    """
    torch.manual_seed(derive_seed(config.seed, "sequence-head"))
    params = list(model.lstm.parameters()) + list(model.linear1.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    fakes = (labels == model.config.fake_index).float().mean().item()
    weights = torch.ones(2)
    weights[model.config.fake_index] = 0.5 / max(fakes, 1e-6)
    weights[model.config.real_index] = 0.5 / max(1 - fakes, 1e-6)
    criterion = nn.CrossEntropyLoss(weight=weights)
    generator = torch.Generator().manual_seed(derive_seed(config.seed, "sequence-order"))
    history = []
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(feats), generator=generator)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            video_logits, _ = model.head(feats[batch])  # (B, 2)
            loss = criterion(video_logits, labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        line = {"epoch": epoch + 1, "loss": total / len(feats)}
        if val is not None:
            line["val_auc"] = head_auc(model, *val)
        history.append(line)
    model.eval()
    return history


@torch.inference_mode()
def head_scores(model: DeepfakeDetector, feats) -> np.ndarray:
    """Video fake probabilities from cached features (N, T, F)."""
    model.eval()
    video_logits, _ = model.head(feats)
    return video_logits.softmax(-1)[:, model.config.fake_index].numpy()


def head_auc(model, feats, labels) -> float:
    y = (labels == model.config.fake_index).numpy().astype(np.int64)
    return metrics.roc_auc(y, head_scores(model, feats))


def fit_for_run(run_dir, config: SequenceHeadConfig, *, device=None) -> dict:
    """Train a sequence head for the frame model of a finished training run and compare the two.

    Reads RUN_DIR/config.json (the run's arguments, data, cache) and RUN_DIR/best.pt; writes
    RUN_DIR/sequence.pt (the sequence model, its threshold chosen by the run's rule) and returns
    the comparison on the validation clips (clean, and after H.264 when the run validated so).
    """
    run_dir = Path(run_dir)
    resolved = json.loads((run_dir / "config.json").read_text())
    args = argparse.Namespace(**resolved["args"])
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    frame = load_checkpoint(run_dir / "best.pt", map_location=device)
    cache_config = CacheConfig(
        **{k: v for k, v in resolved["cache"].items() if k not in ("folder", "summary")}
    )
    _, items, cache, split, unusable, _ = prepare_data(args, cache_config, run_dir)
    usable = {item.video_id for item in items} - {item.video_id for item in unusable}
    chosen = {
        name: [i for i in split.select(items, name) if i.video_id in usable] for name in ("train", "val")
    }
    frames = frame.config.sequence_length
    sbi = sbi_config_from(args)
    augment = PRESETS["none" if args.no_augment else args.augment]
    train_set = ClipDataset(
        build_samples(chosen["train"], args.fakes),
        cache,
        frame.config,
        frames=frames,
        train=True,
        seed=args.seed,
        sampling=args.clip_sampling,
        augment=augment,
        sbi_config=sbi,
    )
    # The same validation clips the frame model was chosen on (run.py builds them this way).
    val_samples = build_samples(
        chosen["val"], args.val_fakes or args.fakes, fakes_per_video=getattr(args, "val_fakes_per_video", 1)
    )
    loader = dict(batch_size=8, shuffle=False)
    draws = []
    for draw in range(config.draws):
        train_set.set_epoch(10_000 + draw)  # draws no training epoch used
        draws.append(clip_features(frame.model, torch.utils.data.DataLoader(train_set, **loader), device))
    train_feats = torch.cat([d[0] for d in draws])
    train_labels = torch.cat([d[1] for d in draws])
    max_fpr = getattr(args, "max_fpr", None)
    val_sets = {"clean": None, "compressed": getattr(args, "val_crf", None)}
    val = {}
    for name, crf in val_sets.items():
        if name == "compressed" and crf is None:
            continue
        dataset = ClipDataset(
            val_samples,
            cache,
            frame.config,
            frames=frames,
            train=False,
            seed=args.seed,
            sbi_config=sbi,
            eval_crf=crf,
        )
        val[name] = clip_features(frame.model, torch.utils.data.DataLoader(dataset, **loader), device)
    frame_model = frame.model.cpu()
    sequence = sequence_model(frame_model, config)
    pooled_feats = torch.cat([v[0] for v in val.values()])
    pooled_labels = torch.cat([v[1] for v in val.values()])
    history = train_head(sequence, train_feats, train_labels, config, val=(pooled_feats, pooled_labels))
    comparison = {}
    for name, (feats, labels) in val.items():
        comparison[name] = {
            "frame_mean": head_auc(frame_model, feats, labels),
            "sequence": head_auc(sequence, feats, labels),
        }
    mean = {k: float(np.mean([c[k] for c in comparison.values()])) for k in ("frame_mean", "sequence")}
    y = (pooled_labels == sequence.config.fake_index).numpy().astype(np.int64)
    p = head_scores(sequence, pooled_feats)
    threshold, rule = metrics.operating_threshold(y, p, max_fpr)
    sequence.config = dataclasses.replace(sequence.config, threshold=threshold)
    report = {
        "config": dataclasses.asdict(config),
        "train_clips": int(len(train_feats)),
        "val_clips": int(len(val["clean"][0])),
        "val_auc": comparison,
        "val_mean_auc": mean,
        "winner": "sequence" if mean["sequence"] > mean["frame_mean"] else "frame_mean",
        "sequence_threshold": threshold,
        "sequence_threshold_rule": rule,
        "history": history,
    }
    save_checkpoint(
        run_dir / "sequence.pt",
        sequence,
        sequence.config,
        # The head's own validation figures at the top (what pages show for this checkpoint); the
        # frame model it sits on keeps its figures under "frame_model".
        metrics={
            "val_video_auc": comparison["clean"]["sequence"],
            "val_compressed_video_auc": comparison.get("compressed", {}).get("sequence"),
            "val_threshold": threshold,
            "val_threshold_rule": rule,
            "frame_model": frame.metrics,
            "sequence_head": {k: v for k, v in report.items() if k != "history"},
        },
        provenance={
            **frame.provenance,
            "head": "LSTM over frames on frozen features (ml_core.training.sequence)",
        },
    )
    logger.info("sequence head vs frame mean on validation: %s -> %s", comparison, report["winner"])
    return report
