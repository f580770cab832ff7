"""One epoch of training and one pass of evaluation (torchvision references layout)."""

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ml_core.training import metrics


@dataclass
class Amp:
    enabled: bool
    dtype: torch.dtype
    device_type: str

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.enabled)


def cosine_with_warmup(optimizer, warmup_steps: int, total_steps: int, min_ratio: float):
    def factor(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


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
