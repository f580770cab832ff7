"""Training samples and the clips a batch is made of: which video, real or fake, which frames.

A self-blended fake is a real clip shown with its blended twin; `paired_batches` keeps the two in
one batch so the model learns the difference, not the identity.
"""

from dataclasses import dataclass

import numpy as np
import torch

from ml_core.media.compression import encode_clip
from ml_core.model.detector import DetectorConfig
from ml_core.model.transforms import crops_to_tensor
from ml_core.training.augment import NO_AUGMENTATION, AugmentConfig, augment_clip
from ml_core.training.cache import VideoCache
from ml_core.training.datasets import VideoItem
from ml_core.training.sbi import SBIConfig, self_blend_clip
from ml_core.training.seeding import rng_for

SBI_SOURCE = "self-blended"
# Which fakes a run trains or validates on: the dataset's own, self-blended ones made from its
# real videos, or both.
FAKE_SOURCES = ("dataset", SBI_SOURCE, "both")


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
        eval_crf: int | None = None,
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
        # Validation only: every clip through H.264 at this CRF, to choose epochs and thresholds
        # on compressed video as well as on the dataset's own.
        self.eval_crf = eval_crf
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
        elif self.eval_crf is not None:
            crops = encode_clip(crops, self.eval_crf)
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


def class_weights(samples: list[Sample], config: DetectorConfig) -> torch.Tensor:
    """Inverse-frequency weights indexed like the model's classes."""
    fakes = sum(sample.label == "FAKE" for sample in samples)
    reals = len(samples) - fakes
    weights = torch.ones(2)
    if fakes and reals:
        weights[config.fake_index] = len(samples) / (2 * fakes)
        weights[config.real_index] = len(samples) / (2 * reals)
    return weights
