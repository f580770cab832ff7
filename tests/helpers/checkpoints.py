"""Checkpoint files for tests: tiny ones in our format, and full-size reference-style ones."""

from pathlib import Path

import torch
from torch import nn

from ml_core.model.checkpoints import save_checkpoint
from ml_core.model.detector import DeepfakeDetector, DetectorConfig


def make_tiny_checkpoint(path, sequence_length=20, seed=0, verdict=None, metrics=None, **config_overrides):
    """Write a tiny-backbone checkpoint in our format (a few KB, loads in milliseconds).

    `verdict`: None for random weights (probabilities near 0.5, often UNCERTAIN), or "FAKE" /
    "REAL" to make every crop score that class with near certainty (for tests that need a verdict).
    `config_overrides`: DetectorConfig fields, e.g. temporal="reference", uncertain_band=0.0.
    """
    torch.manual_seed(seed)
    config = DetectorConfig.tiny(sequence_length=sequence_length, **config_overrides)
    model = DeepfakeDetector(config).eval()
    if verdict is not None:
        if verdict not in ("FAKE", "REAL"):
            raise ValueError("verdict is 'FAKE', 'REAL' or None")
        with torch.no_grad():
            model.linear1.weight.mul_(0.01)
            winner = config.fake_index if verdict == "FAKE" else config.real_index
            model.linear1.bias.copy_(torch.tensor([0.0, 0.0]))
            model.linear1.bias[winner] = 8.0
    return save_checkpoint(
        path,
        model,
        config,
        metrics=metrics or {"val_auc": 0.5},
        provenance={"source": "tests.helpers.checkpoints", "seed": seed},
    )


class ReferenceDetector(nn.Module):
    """The reference app's module, as /work/shared/REFERENCE.md describes it (not our code path)."""

    def __init__(self):
        super().__init__()
        from torchvision.models import resnext50_32x4d

        self.model = nn.Sequential(*list(resnext50_32x4d(weights=None).children())[:-2])
        self.lstm = nn.LSTM(2048, 2048, 1, False)  # 4th positional argument is bias
        self.linear1 = nn.Linear(2048, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dp = nn.Dropout(0.4)

    def forward(self, x, aggregation="mean"):
        b, t, c, h, w = x.shape
        fmap = self.model(x.view(b * t, c, h, w))
        feats = self.avgpool(fmap).view(b, t, 2048)
        x_lstm, _ = self.lstm(feats, None)  # batch_first=False, as in the reference
        if aggregation == "mean":
            return self.dp(self.linear1(torch.mean(x_lstm, dim=1)))
        return self.dp(self.linear1(x_lstm[:, -1, :]))


def make_reference_state_dict_file(directory, frames=20, accuracy=87, tag="final_data", seed=0):
    """Write a full-size (~226 MB) random-init reference-style bare state_dict; returns its path."""
    torch.manual_seed(seed)
    module = ReferenceDetector().eval()
    path = Path(directory) / f"model_{accuracy}_acc_{frames}_frames_{tag}.pt"
    torch.save(module.state_dict(), path)
    return path
