"""Predictor: load a checkpoint once, then classify many videos' face crops.

All crops of all identities of all videos given to `predict_many` go through the backbone in one
batched pass (the expensive part); the small temporal head then runs per identity, so sequences
of different lengths never need padding.
"""

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ml_core.errors import NoFaceFound
from ml_core.inference.explain import cams_from_activations, capture_last_stage, heat_in_face, overlay
from ml_core.inference.score import LEVEL, MIN_IDENTITY_FRAMES, bootstrap_interval, verdict
from ml_core.model.checkpoints import load_checkpoint
from ml_core.model.transforms import crops_to_tensor

logger = logging.getLogger(__name__)

LABELS = ("REAL", "FAKE", "UNCERTAIN")
__all__ = ["LABELS", "IdentityPrediction", "Prediction", "Predictor", "verdict"]


@dataclass
class IdentityPrediction:
    id: int
    label: str
    fake_probability: float
    frame_probabilities: list[float]
    frame_indices: list[int]
    timestamps: list[float]
    # False when the identity was seen in too few frames to take part in the video's verdict.
    counted: bool = True
    # [low, high] of this person's score (ml_core.inference.score); None with fewer than 2 faces.
    interval: list[float] | None = None
    # Per face (explain=True): the share of its Grad-CAM heat inside the central face ellipse.
    heat_in_face: list[float] | None = None

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclass
class Prediction:
    label: str  # "REAL" | "FAKE" | "UNCERTAIN"
    fake_probability: float  # of the decisive identity (the most FAKE one that counted)
    frame_probabilities: list[float]  # main identity, aligned with frame_indices
    frame_indices: list[int]
    timestamps: list[float]
    identities: list[IdentityPrediction]  # main identity first
    model_name: str
    model_sha256: str
    device: str
    main_identity: int = 0
    decisive_identity: int = 0
    threshold: float = 0.5
    uncertain_band: float = 0.1
    # [low, high] of fake_probability from a bootstrap over the counted people's faces, at
    # interval_level coverage (ml_core.inference.score); None when no person has 2 faces.
    score_interval: list[float] | None = None
    interval_level: float = LEVEL
    timings: dict[str, float] = field(default_factory=dict)
    # identity -> BGR uint8 Grad-CAM overlays aligned with that identity's frames (explain=True)
    overlays: dict[int, list[np.ndarray]] = field(default_factory=dict)

    def to_dict(self):
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "overlays"}
        data["identities"] = [identity.to_dict() for identity in self.identities]
        data["timings"] = dict(self.timings)
        data["explained"] = bool(self.overlays)
        return data


def default_device():
    return "cuda" if torch.cuda.is_available() else "cpu"


class Predictor:
    """Loads the checkpoint once; `predict*` methods are then cheap to call many times.

    device: "cuda" when available, else "cpu" (or as given). amp: mixed precision for the backbone
    (default on for CUDA only: bfloat16 where supported, else float16). uncertain_band / threshold /
    aggregation override the checkpoint's config. min_identity_frames: identities seen in fewer
    frames than this (other than the main one) are reported but do not decide the verdict.
    threads: torch CPU threads for this process (default: torch's choice, one per core).
    name: what predictions call the model (default: the name stored in the checkpoint).
    """

    def __init__(
        self,
        checkpoint_path,
        device=None,
        uncertain_band=None,
        amp=None,
        *,
        threshold=None,
        aggregation=None,
        max_batch=64,
        min_identity_frames=MIN_IDENTITY_FRAMES,
        threads=None,
        name=None,
    ):
        if threads:
            # Process-wide. With several busy processes per core, OpenMP threads that spin-wait on
            # each other make a forward several times slower than one thread each.
            torch.set_num_threads(threads)
        self.device = torch.device(device or default_device())
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was requested but CUDA is not available on this machine")
        loaded = load_checkpoint(checkpoint_path, map_location=self.device)
        overrides = {
            key: value
            for key, value in (
                ("uncertain_band", uncertain_band),
                ("threshold", threshold),
                ("aggregation", aggregation),
            )
            if value is not None
        }
        config = dataclasses.replace(loaded.config, **overrides) if overrides else loaded.config
        model = loaded.model
        model.config = config
        model.requires_grad_(False)
        self.cuda = self.device.type == "cuda"
        # channels_last: faster convolutions with cuDNN, and ~10% faster with oneDNN on this CPU too.
        model.to(memory_format=torch.channels_last)
        self.model = model.eval()
        self.loaded = loaded
        self.config = config
        self.model_name = name or loaded.name
        self.model_sha256 = loaded.sha256
        self.amp = self.cuda if amp is None else bool(amp)
        if self.cuda and not torch.cuda.is_bf16_supported():
            self.amp_dtype = torch.float16
        else:
            self.amp_dtype = torch.bfloat16
        self.max_batch = max_batch
        self.min_identity_frames = min_identity_frames
        self.load_seconds = loaded.load_seconds
        self._lock = threading.Lock()

    def __repr__(self):
        return f"Predictor({self.model_name!r}, sha256={self.model_sha256[:12]}, device={self.device})"

    def info(self):
        """JSON-safe description of the loaded model and how it runs (no weights)."""
        amp = str(self.amp_dtype).removeprefix("torch.") if self.amp else None
        return {**self.loaded.info(), "config": self.config.to_dict(), "device": str(self.device), "amp": amp}

    def label_for(self, p_fake, interval=None):
        return verdict(p_fake, self.config.threshold, self.config.uncertain_band, interval)

    def _interval(self, people):
        """The bootstrap interval of a score made from `people` (per-face probability lists).

        Only the "mean" aggregation makes a person's score from all their faces; with "last" a
        resample of the faces says nothing about the score, so there is no interval.
        """
        if self.config.aggregation != "mean":
            return None
        interval = bootstrap_interval(people)
        return None if interval is None else [round(interval[0], 6), round(interval[1], 6)]

    # Tensors -------------------------------------------------------------------------------

    def _to_device(self, x):
        if self.cuda:
            x = x.pin_memory().to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last)

    def _features(self, x):
        """x: (N, 3, S, S) on the device -> (N, feature_dim) float32, in chunks of max_batch."""
        chunks = []
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
            for start in range(0, x.shape[0], self.max_batch):
                chunks.append(self.model.features(x[start : start + self.max_batch]).float())
        return torch.cat(chunks)

    @torch.inference_mode()
    def classify_crops(self, x, lengths):
        """x: (N, 3, S, S) preprocessed crops, grouped into sequences of `lengths`.

        Returns [(video p_fake, frame p_fake array (T,)), ...] per group.
        """
        with self._lock:
            return self._classify(self._to_device(x), lengths)

    def explain_crops(self, x, lengths, on_explain=None):
        """classify_crops plus Grad-CAM maps (N, S, S) from the same pass's last-stage activations.

        `on_explain()` is called between the forward pass and Grad-CAM (progress reporting).
        Returns (results, cams, seconds spent on Grad-CAM).
        """
        # The lock keeps another thread's pass out of this one's activation hook.
        with self._lock:
            with torch.inference_mode(), capture_last_stage(self.model) as activations:
                results = self._classify(self._to_device(x), lengths)
            if on_explain is not None:
                on_explain()
            started = time.perf_counter()
            cams = cams_from_activations(self.model, torch.cat(activations), lengths, x.shape[-2:])
        return results, cams, time.perf_counter() - started

    def _classify(self, x, lengths):
        feats = self._features(x)  # (N, F)
        results, start = [], 0
        fake = self.config.fake_index
        for length in lengths:
            # The head runs in float32: it is cheap and keeps the LSTM out of reduced precision.
            video_logits, frame_logits = self.model.head(feats[start : start + length].unsqueeze(0))
            start += length
            video_p = video_logits.softmax(dim=-1)[0, fake].item()
            frame_p = frame_logits.softmax(dim=-1)[0, :, fake].float().cpu().numpy()  # (T,)
            results.append((video_p, frame_p))
        return results

    def preprocess(self, crops):
        c = self.config
        return crops_to_tensor(
            crops, size=c.image_size, channel_order=c.channel_order, mean=c.mean, std=c.std
        )

    # Videos ----------------------------------------------------------------------------------

    def _tracks(self, extraction):
        """[(identity id, [(SampledFrame, Face), ...])] with the main identity first."""
        ids = [extraction.main_identity] + [
            i.id for i in extraction.identities if i.id != extraction.main_identity
        ]
        tracks = [(i, extraction.track(i)) for i in ids]
        tracks = [(i, track) for i, track in tracks if track]
        if not tracks or tracks[0][0] != extraction.main_identity:
            raise NoFaceFound(f"no face crops for the main identity of {extraction.video.path}")
        return tracks

    def predict(self, extraction, explain=False, on_explain=None):
        return self.predict_many([extraction], explain=explain, on_explain=on_explain)[0]

    def predict_many(self, extractions, explain=False, on_explain=None):
        """One batched backbone pass over every crop of every video; one Prediction per video."""
        started = time.perf_counter()
        per_video = [self._tracks(e) for e in extractions]
        groups = [track for tracks in per_video for _, track in tracks]
        lengths = [len(track) for track in groups]
        x = torch.cat([self.preprocess([face.crop for _, face in track]) for track in groups])  # (N,3,S,S)
        preprocessed = time.perf_counter()
        if explain:
            results, cams, explain_seconds = self.explain_crops(x, lengths, on_explain)
        else:
            results, cams, explain_seconds = self.classify_crops(x, lengths), None, 0.0
        finished = time.perf_counter()
        timings = {
            "preprocess": preprocessed - started,
            "forward": finished - preprocessed - explain_seconds,
            "total": finished - started,
            "videos_in_batch": float(len(extractions)),
            "crops_in_batch": float(x.shape[0]),
        }
        if explain:
            timings["explain"] = explain_seconds

        predictions, g, offset = [], 0, 0
        for extraction, tracks in zip(extractions, per_video):
            identities, overlays = [], {}
            for identity_id, track in tracks:
                video_p, frame_p = results[g]
                heat = None
                if cams is not None:
                    overlays[identity_id] = [
                        overlay(face.crop, cams[offset + k]) for k, (_, face) in enumerate(track)
                    ]
                    heat = [
                        round(heat_in_face(cams[offset + k], self.config.margin), 4)
                        for k in range(len(track))
                    ]
                g += 1
                offset += len(track)
                counted = identity_id == extraction.main_identity or len(track) >= self.min_identity_frames
                frame_probabilities = [float(p) for p in frame_p]
                interval = self._interval([frame_probabilities])
                identities.append(
                    IdentityPrediction(
                        id=identity_id,
                        label=self.label_for(video_p, interval),
                        fake_probability=float(video_p),
                        frame_probabilities=frame_probabilities,
                        frame_indices=[frame.index for frame, _ in track],
                        timestamps=[float(frame.timestamp) for frame, _ in track],
                        counted=counted,
                        interval=interval,
                        heat_in_face=heat,
                    )
                )
            main = identities[0]
            # The video is FAKE if any identity is: the most FAKE identity that counts decides.
            counted_people = [i for i in identities if i.counted]
            decisive = max(counted_people, key=lambda i: i.fake_probability)
            # How sure: resample every counted person's faces, as the "most FAKE person" rule reads them.
            score_interval = self._interval([i.frame_probabilities for i in counted_people])
            predictions.append(
                Prediction(
                    label=self.label_for(decisive.fake_probability, score_interval),
                    fake_probability=decisive.fake_probability,
                    frame_probabilities=main.frame_probabilities,
                    frame_indices=main.frame_indices,
                    timestamps=main.timestamps,
                    identities=identities,
                    model_name=self.model_name,
                    model_sha256=self.model_sha256,
                    device=str(self.device),
                    main_identity=main.id,
                    decisive_identity=decisive.id,
                    threshold=self.config.threshold,
                    uncertain_band=self.config.uncertain_band,
                    score_interval=score_interval,
                    timings=dict(timings),
                    overlays=overlays,
                )
            )
        return predictions

    def extract_config(self, frames=None, **extract_kwargs):
        """Extraction settings that make the crops this model was trained on (its crop recipe)."""
        from ml_core.media.extraction import ExtractConfig

        return ExtractConfig.for_recipe(self.config.crop_recipe, frames, **extract_kwargs)
