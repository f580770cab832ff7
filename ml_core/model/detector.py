"""The detector: a CNN backbone per face crop, an LSTM over the crops, a linear classifier.

Submodule names (`model`, `lstm`, `linear1`) match the reference app's checkpoints so that
its published files load here with `strict=True` (see checkpoints.py).

Two temporal modes:
- "reference": what the reference checkpoints actually compute. Their LSTM was called with
  batch_first=False on (B, T, 2048) features, so with one video every frame got a single LSTM
  step from a zero state. We reproduce that explicitly (a length-1 sequence with a batch of all
  frames), which also keeps videos batched together independent of each other.
- "sequence": a real recurrence over the frames (batch_first=True), used by our own training.
"""

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from ml_core.constants import BOX_MODES, IMAGENET_MEAN, IMAGENET_STD
from ml_core.crop_recipe import CropRecipe, detection_for
from ml_core.model import efficientnet_lite
from ml_core.model.efficientnet_lite import LITE_MEAN, LITE_STD

LITE_BACKBONES = tuple(efficientnet_lite.VARIANTS)
BACKBONES = ("resnext50_32x4d", *LITE_BACKBONES, "small", "residual", "tiny")
SMALL_WIDTHS = (32, 64, 128, 256)
RESIDUAL_WIDTHS = (32, 64, 128)
# The residual backbone pools its fixed filter responses to a RESIDUAL_GRID x RESIDUAL_GRID map.
RESIDUAL_GRID = 32
TEMPORAL_MODES = ("reference", "sequence")
AGGREGATIONS = ("mean", "last")


@dataclass
class DetectorConfig:
    backbone: str = "resnext50_32x4d"
    image_size: int = 112
    feature_dim: int = 2048
    hidden_size: int = 2048
    num_layers: int = 1
    bidirectional: bool = False
    lstm_bias: bool = False
    temporal: str = "reference"
    aggregation: str = "mean"
    class_names: tuple[str, ...] = ("FAKE", "REAL")
    fake_index: int = 0
    channel_order: str = "BGR"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    sequence_length: int = 20
    # Fraction of the face box added on each side when cropping; 0 = tight, as the reference
    # checkpoints were trained.
    margin: float = 0.0
    # Face boxes the crops come from (ml_core.media.extraction.ExtractConfig.boxes): "exact" reproduces
    # full-resolution HOG's boxes, which the reference checkpoints were trained on; "fast" is
    # what our own training uses.
    face_boxes: str = "fast"
    # The face detector and contrast handling the training crops were made with (the rest of the
    # crop recipe is above: boxes, margin, image_size, channel_order, mean, std). None: what the
    # box mode implies (exact: HOG on the frame as decoded; fast: the default detector, "auto").
    face_detector: str | None = None
    contrast: str | None = None
    dropout: float = 0.4
    threshold: float = 0.5
    # |p_fake - threshold| < uncertain_band is reported as UNCERTAIN rather than REAL/FAKE.
    uncertain_band: float = 0.1

    def __post_init__(self):
        self.class_names = tuple(self.class_names)
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, not {self.backbone!r}")
        if self.backbone == "resnext50_32x4d" and self.feature_dim != 2048:
            raise ValueError("resnext50_32x4d produces 2048 features; feature_dim must be 2048")
        if self.backbone in LITE_BACKBONES and self.feature_dim != efficientnet_lite.FEATURES:
            raise ValueError(
                f"{self.backbone} produces {efficientnet_lite.FEATURES} features; set feature_dim to it"
            )
        if self.backbone == "small" and self.feature_dim != SMALL_WIDTHS[-1]:
            raise ValueError(
                f"the small backbone produces {SMALL_WIDTHS[-1]} features; set feature_dim to it"
            )
        if self.backbone == "residual":
            if self.feature_dim != RESIDUAL_WIDTHS[-1]:
                raise ValueError(
                    f"the residual backbone produces {RESIDUAL_WIDTHS[-1]} features; set feature_dim to it"
                )
            if self.image_size % RESIDUAL_GRID:
                raise ValueError(f"the residual backbone needs image_size a multiple of {RESIDUAL_GRID}")
        if self.temporal not in TEMPORAL_MODES:
            raise ValueError(f"temporal must be one of {TEMPORAL_MODES}, not {self.temporal!r}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, not {self.aggregation!r}")
        if len(self.class_names) != 2 or self.fake_index not in (0, 1):
            raise ValueError("the detector has exactly two classes and fake_index is 0 or 1")
        if self.class_names[self.fake_index] != "FAKE":
            raise ValueError(f"class_names[{self.fake_index}] must be 'FAKE', got {self.class_names}")
        if self.face_boxes not in BOX_MODES:
            raise ValueError(f"face_boxes must be 'fast' or 'exact', not {self.face_boxes!r}")
        self.face_detector, self.contrast = detection_for(self.face_boxes, self.face_detector, self.contrast)
        self.crop_recipe  # noqa: B018  (validates the detector and contrast names)
        if self.channel_order not in ("BGR", "RGB"):
            raise ValueError("channel_order must be 'BGR' or 'RGB'")
        if not 0.0 < self.threshold < 1.0 or not 0.0 <= self.uncertain_band < 0.5:
            raise ValueError("threshold must be in (0, 1) and uncertain_band in [0, 0.5)")

    @property
    def crop_recipe(self) -> CropRecipe:
        """How this model's crops are made: training's cache and inference both read it."""
        return CropRecipe(
            detector=self.face_detector,
            contrast=self.contrast,
            boxes=self.face_boxes,
            margin=self.margin,
            size=self.image_size,
            channel_order=self.channel_order,
            mean=self.mean,
            std=self.std,
            frames=self.sequence_length,
        )

    @property
    def real_index(self):
        return 1 - self.fake_index

    @property
    def lstm_output_dim(self):
        return self.hidden_size * (2 if self.bidirectional else 1)

    def to_dict(self):
        # Lists, not tuples: the dict is stored in checkpoints and shown as JSON.
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown DetectorConfig fields: {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def reference(cls, sequence_length=20, **overrides):
        """The configuration of the reference app's published checkpoints."""
        return cls(**{"sequence_length": sequence_length, "face_boxes": "exact", **overrides})

    @classmethod
    def native(cls, sequence_length=20, **overrides):
        """Our own training: a real recurrence over the frames, with LSTM biases."""
        values = dict(temporal="sequence", lstm_bias=True, hidden_size=512, sequence_length=sequence_length)
        values.update(overrides)
        return cls(**values)

    @classmethod
    def lite(cls, backbone="efficientnet_lite0", sequence_length=20, **overrides):
        """EfficientNet-Lite from ImageNet weights: RGB in, Lite's own scaling, 1280 features."""
        values = dict(
            backbone=backbone,
            image_size=160,
            feature_dim=efficientnet_lite.FEATURES,
            hidden_size=128,
            temporal="sequence",
            lstm_bias=True,
            channel_order="RGB",
            mean=LITE_MEAN,
            std=LITE_STD,
            margin=0.25,
            sequence_length=sequence_length,
        )
        values.update(overrides)
        return cls(**values)

    @classmethod
    def small(cls, sequence_length=20, **overrides):
        """A compact plain CNN (about 1.8M weights) that trains from scratch on a CPU in minutes."""
        values = dict(
            backbone="small",
            feature_dim=SMALL_WIDTHS[-1],
            hidden_size=128,
            temporal="sequence",
            lstm_bias=True,
            sequence_length=sequence_length,
        )
        values.update(overrides)
        return cls(**values)

    @classmethod
    def residual(cls, sequence_length=20, **overrides):
        """Fixed high-pass filters and a small CNN on their pooled energy (see ResidualMaps)."""
        values = dict(
            backbone="residual",
            image_size=128,
            feature_dim=RESIDUAL_WIDTHS[-1],
            hidden_size=64,
            temporal="sequence",
            lstm_bias=True,
            margin=0.25,
            sequence_length=sequence_length,
        )
        values.update(overrides)
        return cls(**values)

    @classmethod
    def tiny(cls, sequence_length=20, **overrides):
        """A few small conv layers instead of ResNeXt50: same code paths, kilobytes of weights."""
        values = dict(
            backbone="tiny",
            feature_dim=16,
            hidden_size=8,
            temporal="sequence",
            lstm_bias=True,
            sequence_length=sequence_length,
        )
        values.update(overrides)
        return cls(**values)


def _conv_block(cin, cout, stride):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def _high_pass_kernels():
    kernels = torch.zeros(4, 1, 5, 5)  # (filters, 1, 5, 5), each centred in the 5 x 5 window
    kernels[0, 0, 1:4, 1:4] = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]])
    kernels[1, 0, 2, 2:4] = torch.tensor([-1.0, 1])
    kernels[2, 0, 2:4, 2] = torch.tensor([-1.0, 1])
    srm_kv = [
        [-1, 2, -2, 2, -1],
        [2, -6, 8, -6, 2],
        [-2, 8, -12, 8, -2],
        [2, -6, 8, -6, 2],
        [-1, 2, -2, 2, -1],
    ]
    kernels[3, 0] = torch.tensor(srm_kv, dtype=torch.float32) / 12
    return kernels


HIGH_PASS = _high_pass_kernels()


class ResidualMaps(nn.Module):
    """Fixed (not learned) maps of where a face crop is sharp, noisy or off-colour.

    Face swaps paste a re-rendered face into a frame: inside the blend the image is smoother or
    noisier than around it, the seam has its own texture, and the colours drift. A small CNN
    trained from scratch on a few hundred clips does not find these cues in raw pixels within a
    CPU budget (measured: chance after 4 epochs); given them directly it learns in minutes.

    Channels: log energy of four high-pass filters (Laplacian, horizontal and vertical
    differences, the SRM "KV" 5x5 residual from steganalysis) and three opponent colours,
    each averaged over cells of image_size / RESIDUAL_GRID pixels and centred on its
    per-crop mean, so that overall sharpness (the video's resolution and compression) and
    overall colour cancel out and only differences across the crop remain.
    """

    out_channels = 7

    def __init__(self, config):
        super().__init__()
        # Constants rather than buffers: nothing to store in (or load from) a checkpoint.
        self.cell = config.image_size // RESIDUAL_GRID
        self.mean = tuple(255 * v for v in config.mean)
        self.std = tuple(255 * v for v in config.std)
        self.rgb = (2, 1, 0) if config.channel_order == "BGR" else (0, 1, 2)

    def forward(self, x):
        # x: (N, 3, S, S) normalised -> (N, 7, RESIDUAL_GRID, RESIDUAL_GRID)
        std = x.new_tensor(self.std).view(1, 3, 1, 1)
        x = x * std + x.new_tensor(self.mean).view(1, 3, 1, 1)  # (N, 3, S, S), 0..255
        red, green, blue = (x[:, i : i + 1] for i in self.rgb)  # (N, 1, S, S) each
        grey = 0.299 * red + 0.587 * green + 0.114 * blue
        energy = nn.functional.conv2d(grey, HIGH_PASS.to(x), padding=2).abs()  # (N, 4, S, S)
        energy = torch.log(nn.functional.avg_pool2d(energy, self.cell) + 0.5)  # (N, 4, G, G)
        colour = torch.cat([grey, red - green, (red + green) / 2 - blue], dim=1)  # (N, 3, S, S)
        colour = nn.functional.avg_pool2d(colour, self.cell) / 20  # (N, 3, G, G)
        maps = torch.cat([energy, colour], dim=1)  # (N, 7, G, G)
        return maps - maps.mean(dim=(2, 3), keepdim=True)


def build_backbone(config):
    """An nn.Sequential of 8 children whose last one (`[7]`) is the last stage (Grad-CAM's target)."""
    if config.backbone == "resnext50_32x4d":
        from torchvision.models import resnext50_32x4d

        # conv1, bn1, relu, maxpool, layer1..layer4 (avgpool and fc dropped), as the reference.
        return nn.Sequential(*list(resnext50_32x4d(weights=None).children())[:-2])
    if config.backbone in LITE_BACKBONES:
        return efficientnet_lite.build_lite(config.backbone)  # random weights: see load_imagenet
    if config.backbone == "small":
        # No max-pooling in the stem: blending boundaries are a few pixels wide, so the first
        # stages keep full detail and downsample by strided convs. 112 px in -> 7 x 7 x 256 out.
        w1, w2, w3, w4 = SMALL_WIDTHS
        return nn.Sequential(
            nn.Conv2d(3, w1, 3, 1, 1, bias=False),
            nn.BatchNorm2d(w1),
            nn.ReLU(inplace=True),
            _conv_block(w1, w1, 2),
            nn.Sequential(_conv_block(w1, w2, 2), _conv_block(w2, w2, 1)),
            nn.Sequential(_conv_block(w2, w3, 2), _conv_block(w3, w3, 1)),
            nn.Sequential(_conv_block(w3, w4, 2), _conv_block(w4, w4, 1)),
            _conv_block(w4, w4, 1),
        )
    if config.backbone == "residual":
        # 32 x 32 x 7 fixed maps -> 4 x 4 x 128.
        w1, w2, w3 = RESIDUAL_WIDTHS
        return nn.Sequential(
            ResidualMaps(config),
            _conv_block(ResidualMaps.out_channels, w1, 1),
            _conv_block(w1, w1, 1),
            _conv_block(w1, w2, 2),
            _conv_block(w2, w2, 1),
            _conv_block(w2, w3, 2),
            _conv_block(w3, w3, 1),
            _conv_block(w3, w3, 2),
        )
    # Same layout in miniature: stem conv, bn, relu, maxpool, then four "stages".
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, 2, 1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        _conv_block(4, 4, 1),
        _conv_block(4, 8, 2),
        _conv_block(8, 8, 2),
        _conv_block(8, config.feature_dim, 1),
    )


class DeepfakeDetector(nn.Module):
    def __init__(self, config: DetectorConfig):
        super().__init__()
        self.config = config
        self.model = build_backbone(config)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.lstm = nn.LSTM(
            config.feature_dim,
            config.hidden_size,
            config.num_layers,
            bias=config.lstm_bias,
            batch_first=config.temporal == "sequence",
            bidirectional=config.bidirectional,
        )
        self.dp = nn.Dropout(config.dropout)
        self.linear1 = nn.Linear(config.lstm_output_dim, 2)
        self.frozen_children = 0

    def freeze_backbone(self, children: int):
        """Stop training the first `children` backbone stages (weights and batch-norm statistics).

        Fine-tuning from ImageNet on a few hundred clips: the early stages' generic edge and
        texture filters are kept as they are, and only the later ones adapt.
        """
        self.frozen_children = children
        for parameter in self.model[:children].parameters():
            parameter.requires_grad_(False)
        self.train(self.training)

    def train(self, mode=True):
        super().train(mode)
        for child in self.model[: self.frozen_children]:
            child.eval()  # frozen batch norms keep their ImageNet statistics
        return self

    def features(self, x):
        # x: (N, 3, H, W) -> (N, feature_dim)
        return self.avgpool(self.model(x)).flatten(1)

    def head(self, feats):
        """feats: (B, T, feature_dim) -> video_logits (B, 2), frame_logits (B, T, 2)."""
        b, t, f = feats.shape
        if self.config.temporal == "reference":
            out = self._step_from_zero(feats.reshape(b * t, f)).reshape(b, t, -1)  # (B, T, H)
        else:
            out, _ = self.lstm(feats)  # (B, T, H)
        # Training-only regulariser on the LSTM outputs (the reference put it on the logits, which
        # only rescales them); a no-op in eval mode either way, so reference outputs are unchanged.
        out = self.dp(out)
        frame_logits = self.linear1(out)  # (B, T, 2)
        if self.config.aggregation == "mean":
            video_logits = self.linear1(out.mean(dim=1))  # (B, 2)
        else:
            video_logits = frame_logits[:, -1]  # (B, 2)
        return video_logits, frame_logits

    def _step_from_zero(self, x):
        """One LSTM step per row from a zero (h, c) state: x (N, F) -> (N, H * directions).

        Same result as running nn.LSTM on a length-1 sequence, without the recurrent matmul (its
        input is zero) that makes nn.LSTM ~8x slower here on CPU.
        """
        lstm = self.lstm
        suffixes = ["", "_reverse"] if lstm.bidirectional else [""]
        for layer in range(lstm.num_layers):
            outputs = []
            for suffix in suffixes:
                name = f"l{layer}{suffix}"
                gates = nn.functional.linear(x, getattr(lstm, f"weight_ih_{name}"))  # (N, 4H)
                if lstm.bias:
                    gates = gates + getattr(lstm, f"bias_ih_{name}") + getattr(lstm, f"bias_hh_{name}")
                i, _, g, o = gates.chunk(4, dim=1)  # PyTorch's gate order; the forget gate meets c=0
                cell = torch.sigmoid(i) * torch.tanh(g)
                outputs.append(torch.sigmoid(o) * torch.tanh(cell))  # (N, H)
            x = torch.cat(outputs, dim=1)
        return x

    def forward(self, x):
        """x: (B, T, 3, H, W) -> video_logits (B, 2), frame_logits (B, T, 2)."""
        b, t = x.shape[:2]
        feats = self.features(x.flatten(0, 1))  # (B*T, F)
        return self.head(feats.view(b, t, -1))
