"""Preprocessing cache: run the face pipeline once per video, keep the crops, never decode again.

Layout, one folder per fingerprint (CacheConfig.fingerprint: every extraction setting, the
face-finding code's version, library versions), so crops made differently never mix:

    CACHE_DIR/<f20-uniform-hog+mtcnn-cauto-m0.00-s112-HASH>/index.json   # config + one entry per video
    CACHE_DIR/<...>/crops/<key>.npz                             # per video, uncompressed:
        crops          (T, S, S, 3) uint8 BGR  (the main identity's face in each sampled frame)
        frame_indices  (T,) int64               (frame numbers in the video)
        timestamps     (T,) float32             (seconds)
        boxes          (T, 4) int32             (top, right, bottom, left in frame pixels)
        face_boxes     (T, 4) float32           (the face box inside the crop, crop pixels)
        landmarks      (T, 68, 2) float32       (x, y in crop pixels; NaN where none were found)

An entry is redone when the video's size or modification time changes. Videos where no face
is found (or that cannot be read) get an entry with status "no_face" / "error" and a message,
so training and evaluation can count and list them instead of dropping them silently.
"""

import hashlib
import importlib
import importlib.metadata
import json
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ml_core.constants import DEFAULT_FACE_DETECTOR
from ml_core.crop_recipe import CropRecipe
from ml_core.io import atomic_write, write_json
from ml_core.training.datasets import VideoItem

logger = logging.getLogger(__name__)

INDEX_VERSION = 2


@dataclass(frozen=True)
class CacheConfig:
    frames: int = 20
    strategy: str = "uniform"
    detector: str = DEFAULT_FACE_DETECTOR
    contrast: str = "auto"
    margin: float = 0.0
    crop_size: int = 112
    landmarks: bool = True

    @classmethod
    def from_recipe(cls, recipe: CropRecipe, frames: int, landmarks: bool = True) -> "CacheConfig":
        """The cache that holds `recipe`'s crops, `frames` of them per video (more than a model's
        clip: training draws its clips from them)."""
        if recipe.boxes != "fast":
            raise ValueError("the training cache makes fast boxes; exact boxes are for reference checkpoints")
        return cls(
            frames=frames,
            strategy=recipe.sampling,
            detector=recipe.detector,
            contrast=recipe.contrast,
            margin=recipe.margin,
            crop_size=recipe.size,
            landmarks=landmarks,
        )

    @property
    def recipe(self) -> CropRecipe:
        return CropRecipe(
            detector=self.detector,
            contrast=self.contrast,
            margin=self.margin,
            size=self.crop_size,
            frames=self.frames,
            sampling=self.strategy,
        )

    def extract_config(self):
        from ml_core.media.extraction import ExtractConfig  # loads dlib: only when crops are made

        return ExtractConfig.for_recipe(self.recipe)

    def fingerprint(self) -> dict:
        """Everything that decides the crops: every extraction setting (defaults included), the
        face-finding code's version and the libraries that decode, detect and resize."""
        from ml_core.media.extraction import FACE_FINDING_VERSION
        from ml_core.media.face_calibration import mtcnn_to_hog_mapping

        return {
            "extract": asdict(self.extract_config()),
            # MTCNN's boxes become HOG-like through this fit: a new fit makes other crops.
            "mtcnn_to_hog": mtcnn_to_hog_mapping(),
            "landmarks": self.landmarks,
            "face_finding_version": FACE_FINDING_VERSION,
            "libraries": library_versions(),
        }

    @property
    def folder_name(self) -> str:
        """Readable settings, then a hash of the whole fingerprint: a changed default, a new face
        finder or another OpenCV gets a new folder instead of stale crops."""
        name = f"f{self.frames}-{self.strategy}-{self.detector}-c{self.contrast}"
        name += f"-m{self.margin:.2f}-s{self.crop_size}"
        digest = hashlib.sha256(json.dumps(self.fingerprint(), sort_keys=True).encode()).hexdigest()[:12]
        return f"{name}{'' if self.landmarks else '-nolm'}-{digest}"

    def to_dict(self):
        return asdict(self)


def library_versions() -> dict:
    versions = {}
    for module in ("av", "cv2", "dlib", "numpy", "torch"):
        versions[module] = getattr(importlib.import_module(module), "__version__", "unknown")
    try:
        versions["facenet-pytorch"] = importlib.metadata.version("facenet-pytorch")
    except importlib.metadata.PackageNotFoundError:
        versions["facenet-pytorch"] = "absent"
    return versions


@dataclass
class CachedVideo:
    crops: np.ndarray  # (T, S, S, 3) uint8 BGR
    landmarks: np.ndarray  # (T, 68, 2) float32, NaN rows where none were found
    face_boxes: np.ndarray  # (T, 4) float32 (top, right, bottom, left) of the face inside each crop
    frame_indices: np.ndarray  # (T,)
    timestamps: np.ndarray  # (T,)


def _key(path: str) -> str:
    return hashlib.sha1(str(Path(path).resolve()).encode(), usedforsecurity=False).hexdigest()[:24]


def _stamp(path: str) -> dict:
    stat = os.stat(path)
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def face_in_crop(box, margin: float, width: int, height: int, size: int) -> tuple[float, float, float, float]:
    """Where the face box lies inside its crop (crop pixels), for crops cut as media.crop_face does:
    the box grown by `margin` on each side, clamped to the frame, resized to size x size."""
    top, right, bottom, left = box
    dy, dx = round(margin * (bottom - top)), round(margin * (right - left))
    crop_top, crop_bottom = max(0, min(height, top - dy)), max(0, min(height, bottom + dy))
    crop_left, crop_right = max(0, min(width, left - dx)), max(0, min(width, right + dx))
    sy = size / max(1, crop_bottom - crop_top)
    sx = size / max(1, crop_right - crop_left)
    return (
        (top - crop_top) * sy,
        (right - crop_left) * sx,
        (bottom - crop_top) * sy,
        (left - crop_left) * sx,
    )


def cache_one(path: str, out_file: str, config: dict) -> dict:
    """Extract, crop and find landmarks for one video; write its .npz; return its index entry.

    Runs in a worker process: it must only take and return plain values.
    """
    import cv2

    from ml_core.errors import MlCoreError
    from ml_core.media.extraction import extract_faces

    cv2.setNumThreads(1)  # the pool already uses every core
    cfg = CacheConfig(**config)
    entry = {"path": path, **_stamp(path), "file": None, "frames": 0, "landmarks_found": 0}
    try:
        extraction = extract_faces(path, cfg.extract_config())
    except MlCoreError as exc:
        status = "no_face" if exc.code == "no_face" else "error"
        return {**entry, "status": status, "error_code": exc.code, "message": str(exc)}
    track = extraction.track()
    if not track:
        return {**entry, "status": "no_face", "error_code": "no_face", "message": "main identity has no face"}
    crops = np.stack([face.crop for _, face in track]).astype(np.uint8)
    info = extraction.video
    face_boxes = np.array(
        [face_in_crop(face.box, cfg.margin, info.width, info.height, cfg.crop_size) for _, face in track],
        np.float32,
    )
    landmarks = np.full((len(track), 68, 2), np.nan, np.float32)
    if cfg.landmarks:
        from ml_core.training.sbi import detect_landmarks

        for index, crop in enumerate(crops):
            points = detect_landmarks(crop, tuple(float(v) for v in face_boxes[index]))
            if points is not None:
                landmarks[index] = points
    out = Path(out_file)
    with atomic_write(out) as handle:
        np.savez(
            handle,
            crops=crops,
            frame_indices=np.array([frame.index for frame, _ in track], np.int64),
            timestamps=np.array([frame.timestamp for frame, _ in track], np.float32),
            boxes=np.array([face.box for _, face in track], np.int32),
            face_boxes=face_boxes,
            landmarks=landmarks,
        )
    return {
        **entry,
        "status": "ok",
        "file": out.name,
        "frames": len(track),
        "landmarks_found": int(np.isfinite(landmarks[:, 0, 0]).sum()),
        "identities": len(extraction.identities),
        "warnings": list(extraction.warnings),
    }


class VideoCache:
    def __init__(self, cache_dir, config: CacheConfig | None = None):
        self.config = config or CacheConfig()
        self.folder = Path(cache_dir) / self.config.folder_name
        self.crops_dir = self.folder / "crops"
        self.index_path = self.folder / "index.json"
        self.entries: dict[str, dict] = {}
        if self.index_path.is_file():
            data = json.loads(self.index_path.read_text())
            if data.get("version") == INDEX_VERSION and data.get("config") == self.config.to_dict():
                self.entries = data.get("entries", {})

    def _save_index(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json(
            self.index_path,
            {
                "version": INDEX_VERSION,
                "config": self.config.to_dict(),
                "fingerprint": self.config.fingerprint(),
                "entries": self.entries,
            },
        )

    def entry(self, item: VideoItem) -> dict | None:
        return self.entries.get(_key(item.path))

    def _fresh(self, item: VideoItem) -> bool:
        entry = self.entry(item)
        if entry is None or not os.path.exists(item.path):
            return False
        if entry["status"] == "ok" and not (self.crops_dir / entry["file"]).is_file():
            return False
        return (
            entry.get("size") == os.stat(item.path).st_size
            and entry.get("mtime_ns") == os.stat(item.path).st_mtime_ns
        )

    def build(self, items: list[VideoItem], *, workers: int = 1, progress: bool = True) -> dict[str, int]:
        """Cache every video not cached yet; return counts by status."""
        self.crops_dir.mkdir(parents=True, exist_ok=True)
        todo = {}
        for item in items:
            if not self._fresh(item):
                todo[_key(item.path)] = item
        if todo:
            logger.info(
                "caching %d of %d videos with %d worker(s) in %s", len(todo), len(items), workers, self.folder
            )
            self._run(todo, workers, progress)
        return self.summary(items)

    def _run(self, todo: dict[str, VideoItem], workers: int, progress: bool):
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="caching faces", unit="video", disable=not progress)
        config = self.config.to_dict()
        done = 0
        try:
            if workers <= 1:
                for key, item in todo.items():
                    self._record(key, cache_one(item.path, str(self.crops_dir / f"{key}.npz"), config))
                    done += 1
                    bar.update()
                    if done % 20 == 0:
                        self._save_index()
            else:
                # spawn: a forked child would inherit torch/OpenMP thread pools in a bad state.
                context = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                    futures = {
                        pool.submit(cache_one, item.path, str(self.crops_dir / f"{key}.npz"), config): key
                        for key, item in todo.items()
                    }
                    for future in as_completed(futures):
                        key = futures[future]
                        try:
                            entry = future.result()
                        except Exception as exc:  # a crash in one video must not lose the others
                            item = todo[key]
                            entry = {"path": item.path, **_stamp(item.path), "status": "error", "file": None}
                            entry.update(frames=0, error_code="crash", message=f"{type(exc).__name__}: {exc}")
                        self._record(key, entry)
                        done += 1
                        bar.update()
                        if done % 20 == 0:
                            self._save_index()
        finally:
            bar.close()
            self._save_index()

    def _record(self, key, entry):
        self.entries[key] = entry
        if entry["status"] != "ok":
            logger.warning("%s: %s (%s)", entry["path"], entry["status"], entry.get("message", ""))

    def summary(self, items: list[VideoItem]) -> dict[str, int]:
        counts = {"ok": 0, "no_face": 0, "error": 0, "missing": 0, "frames": 0, "landmark_fallback_frames": 0}
        for item in items:
            entry = self.entry(item)
            status = entry["status"] if entry else "missing"
            counts[status] = counts.get(status, 0) + 1
            if entry and status == "ok":
                counts["frames"] += entry["frames"]
                counts["landmark_fallback_frames"] += entry["frames"] - entry.get("landmarks_found", 0)
        return counts

    def status(self, item: VideoItem) -> str:
        entry = self.entry(item)
        return entry["status"] if entry else "missing"

    def load(self, item: VideoItem) -> CachedVideo | None:
        entry = self.entry(item)
        if not entry or entry["status"] != "ok":
            return None
        with np.load(self.crops_dir / entry["file"]) as data:
            return CachedVideo(
                crops=data["crops"],
                landmarks=data["landmarks"],
                face_boxes=data["face_boxes"],
                frame_indices=data["frame_indices"],
                timestamps=data["timestamps"],
            )
