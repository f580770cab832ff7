"""Training augmentation for clips of face crops (the "train preset").

Evaluation and inference use no augmentation: crops go straight to
ml_core.model.transforms.crops_to_tensor with the checkpoint's normalisation (the "eval preset").

One set of random choices is applied to every frame of a clip, as a real video's frames share
their lighting, compression and blur. Inputs and outputs are BGR uint8 (T, H, W, 3).
"""

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ml_core.media.compression import encode_clip


@dataclass(frozen=True)
class AugmentConfig:
    flip: float = 0.5  # probabilities of each step
    colour: float = 0.5
    compression: float = 0.3
    blur: float = 0.2
    brightness: float = 0.15  # colour jitter ranges
    contrast: float = 0.15
    saturation: float = 0.2
    jpeg_quality: tuple[int, int] = (40, 95)
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    # A lower resolution on the way (a smaller upload, a re-scaled re-post): shrink by a factor
    # drawn from `rescale_range`, then back to the crop size.
    rescale: float = 0.0
    rescale_range: tuple[float, float] = (0.4, 0.9)
    # Real H.264 (libx264) over the clip's crops at a CRF drawn from `h264_crf`: FaceForensics++'s
    # c23 and c40 are CRF 23 and 40.
    h264: float = 0.0
    h264_crf: tuple[int, int] = (18, 42)

    def to_dict(self):
        return asdict(self)


NO_AUGMENTATION = AugmentConfig(flip=0, colour=0, compression=0, blur=0)
# Mirror and colour only. Blur and recompression erase the high-frequency traces the residual
# backbone looks for (measured: with them it stayed at chance; see models/default/MODEL_CARD.md).
LIGHT_AUGMENTATION = AugmentConfig(compression=0, blur=0)
# What uploads go through: mirror and colour, a smaller size on the way, and real H.264 at any
# strength from near-lossless to below FaceForensics++'s c40, for most clips (the rest stay as
# cached, i.e. as the dataset's own c23).
ROBUST_AUGMENTATION = AugmentConfig(colour=0.3, compression=0.1, blur=0.1, rescale=0.3, h264=0.7)
PRESETS = {
    "full": AugmentConfig(),
    "light": LIGHT_AUGMENTATION,
    "robust": ROBUST_AUGMENTATION,
    "none": NO_AUGMENTATION,
}


def augment_clip(frames: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """frames: (T, H, W, 3) uint8 BGR -> the same shape, augmented consistently across frames."""
    frames = np.ascontiguousarray(frames)
    if rng.random() < config.flip:
        frames = np.ascontiguousarray(frames[:, :, ::-1])
    if rng.random() < config.colour:
        brightness = rng.uniform(-config.brightness, config.brightness) * 255
        contrast = 1 + rng.uniform(-config.contrast, config.contrast)
        saturation = 1 + rng.uniform(-config.saturation, config.saturation)
        frames = np.stack([_colour(frame, brightness, contrast, saturation) for frame in frames])
    if rng.random() < config.blur:
        sigma = rng.uniform(*config.blur_sigma)
        frames = np.stack([cv2.GaussianBlur(frame, (0, 0), sigma) for frame in frames])
    if rng.random() < config.rescale:
        factor = rng.uniform(*config.rescale_range)
        frames = np.stack([_rescale(frame, factor) for frame in frames])
    if rng.random() < config.compression:
        quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        frames = np.stack([_jpeg(frame, quality) for frame in frames])
    if rng.random() < config.h264:
        frames = encode_clip(frames, int(rng.integers(config.h264_crf[0], config.h264_crf[1] + 1)))
    return frames


def _rescale(frame, factor):
    height, width = frame.shape[:2]
    small = cv2.resize(
        frame, (max(8, round(width * factor)), max(8, round(height * factor))), interpolation=cv2.INTER_AREA
    )
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _colour(frame, brightness, contrast, saturation):
    image = frame.astype(np.float32)
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)[..., None]
    image = grey + (image - grey) * saturation
    image = (image - image.mean()) * contrast + image.mean() + brightness
    return np.clip(image, 0, 255).astype(np.uint8)


def _jpeg(frame, quality):
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR) if ok else frame
