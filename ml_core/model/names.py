"""Models in words, from their config: no torch here, so the web pages can import it."""

from pathlib import Path

BACKBONE_NAMES = {
    "resnext50_32x4d": "ResNeXt50 (32x4d)",
    "efficientnet_lite0": "EfficientNet-Lite0 (ImageNet-pretrained)",
    "efficientnet_lite2": "EfficientNet-Lite2 (ImageNet-pretrained)",
    "small": "a small CNN",
    "residual": "a small CNN on fixed high-pass maps",
    "tiny": "a tiny test CNN",
}


def describe_architecture(backbone: str, temporal: str) -> str:
    """What a model is, in words, from its config's backbone and temporal mode (for pages and cards).

    The product must never claim an architecture the active model does not have, so the words
    come from the checkpoint's own config, not from a fixed sentence.
    """
    cnn = BACKBONE_NAMES.get(backbone, backbone)
    if temporal == "sequence":
        return f"{cnn} features per face, then an LSTM over the frames"
    return f"{cnn} per face, each frame scored on its own, the video score their log-odds mean"


def default_model_name(path) -> str:
    """The name the shipped detector goes by, in the app (`install_detector --default`) and on the
    command line alike: "default (default/detector.pt)", not the "best" its training run gave it."""
    path = Path(path)
    return f"default ({path.parent.name}/{path.name})"
