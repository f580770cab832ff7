"""How a model's face crops are made: the one record training's cache, inference and the worker read.

A model must see at inference exactly the crops it was trained on. Every checkpoint's config
carries the fields (ml_core.model.detector.DetectorConfig.crop_recipe gives this view of them);
the training cache is built from the recipe of the model it trains (CacheConfig.from_recipe) and
inference turns the recipe into extraction settings with ExtractConfig.for_recipe, the one place
that does it. Reference checkpoints get theirs from their known preprocessing: exact boxes, i.e.
full-resolution HOG on the frame as decoded, tight crops, BGR, ImageNet normalisation.
"""

from dataclasses import asdict, dataclass

from ml_core.constants import (
    BOX_MODES,
    CONTRASTS,
    DEFAULT_FACE_DETECTOR,
    FACE_DETECTORS,
    IMAGENET_MEAN,
    IMAGENET_STD,
)


@dataclass(frozen=True)
class CropRecipe:
    detector: str = DEFAULT_FACE_DETECTOR  # ml_core.constants.FACE_DETECTORS
    contrast: str = "auto"  # "auto": dark or flat frames equalised for detection only; "off"
    boxes: str = "fast"  # "exact": full-resolution HOG's own boxes (the reference checkpoints')
    margin: float = 0.0  # fraction of the face box added on each side
    size: int = 112  # crop side, px
    channel_order: str = "BGR"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    frames: int = 20  # frames sampled per video by default
    sampling: str = "uniform"  # across the whole video ("first-n": the reference app's)

    def __post_init__(self):
        if self.detector not in FACE_DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(FACE_DETECTORS)}, got {self.detector!r}")
        if self.contrast not in CONTRASTS:
            raise ValueError(f"contrast must be one of {', '.join(CONTRASTS)}, got {self.contrast!r}")
        if self.boxes not in BOX_MODES:
            raise ValueError(f"boxes must be one of {', '.join(BOX_MODES)}, got {self.boxes!r}")
        if self.boxes == "exact" and (self.detector, self.contrast) != EXACT_BOXES_DETECTION:
            raise ValueError("exact boxes are HOG's on the frame as decoded: detector 'hog', contrast 'off'")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


# What exact boxes are made with; nothing else reproduces the boxes reference checkpoints saw.
EXACT_BOXES_DETECTION = ("hog", "off")


def detection_for(boxes: str, detector: str | None, contrast: str | None) -> tuple[str, str]:
    """The (detector, contrast) pair for a box mode: exact boxes have theirs, fast ones default."""
    if boxes == "exact":
        return EXACT_BOXES_DETECTION
    return detector or DEFAULT_FACE_DETECTOR, contrast or "auto"
