"""From a video file to the face crops the model sees.

    extraction = extract_faces("clip.mp4", ExtractConfig(frames=20))
    crops = [face.crop for _, face in extraction.track()]   # main identity, time order

Frames are sampled across the whole video (or the first N, for parity with the reference
app), decoded one at a time (ml_core.media.video), faces detected at a reduced, pyramid-aligned
scale (HOG, then MTCNN where HOG sees nobody; dark frames equalised for detection only)
and linked into identities (ml_core.media.faces). A frame where a person's face was not found
is reported as missing for that person; nothing ever falls back to the whole frame.
"""

import logging
import time
from contextlib import closing
from dataclasses import asdict, dataclass, field

import numpy as np

from ml_core.constants import (
    BOX_MODES,
    CONTRASTS,
    DEFAULT_FRAMES,
    FACE_DETECTORS,
    MAX_FRAME_PIXELS,
    MAX_FRAMES,
    MIN_FRAMES,
)
from ml_core.crop_recipe import EXACT_BOXES_DETECTION, CropRecipe, detection_for
from ml_core.errors import NoFaceFound, TruncatedVideo, VideoTooLong
from ml_core.media import hog_exact
from ml_core.media.boxes import box_area, clamp_box, iou
from ml_core.media.face_tracking import LINK_IOU, Tracker
from ml_core.media.faces import (
    Detection,
    aligned_scale,
    all_large,
    close_look,
    detect,
    detection_copy,
    finer_scale,
    found_at_finest_level,
    region_search,
    search_region,
    working_scan,
)
from ml_core.media.video import VideoInfo, iter_frames, prefetched, probe
from ml_core.resizing import resize_square

__all__ = [
    "ExtractConfig",
    "Extraction",
    "Face",
    "Identity",
    "SampledFrame",
    "VideoInfo",
    "crop_face",
    "extract_faces",
    "probe",
]

logger = logging.getLogger(__name__)

# Bump when a change to face finding or cropping changes the crops a given ExtractConfig yields:
# training caches are keyed on it (ml_core.training.cache), so old crops are never reused.
FACE_FINDING_VERSION = 3

STRATEGIES = ("uniform", "first-n")


@dataclass
class ExtractConfig:
    frames: int = DEFAULT_FRAMES
    strategy: str = "uniform"  # "uniform" across the whole video | "first-n" like the reference app
    # "hog+mtcnn": HOG, then MTCNN on frames where HOG found nobody or lost someone seen just
    # before (dark, small, turned faces); "hog" alone (what exact boxes reproduce); "mtcnn"
    # alone; "cnn" (dlib's MMOD CNN, minutes per clip on CPU). None: "hog+mtcnn", or "hog"
    # with exact boxes.
    detector: str | None = None
    # "auto": dark or flat frames are equalised on the copy the detector scans (never the crops);
    # "off": the detector scans the frame as decoded. None: "auto", or "off" with exact boxes.
    contrast: str | None = None
    margin: float = 0.0  # fraction of the box's width/height added on each side; 0 = tight (reference)
    crop_size: int = 112
    max_duration: float | None = None  # seconds; VideoTooLong beyond
    max_pixels: int = MAX_FRAME_PIXELS  # VideoTooLarge beyond (the probe checks, the decoder is bounded)
    # Longest side of the frame the detector scans. ~800 keeps 1080p HOG at ~50 ms/frame while
    # boxes still match full-resolution HOG; faces under ~80 px at that scale need a retry.
    work_max_side: int = 800
    retry_finer: bool = True  # re-detect at a finer scale on frames where no face was found
    # Between whole-frame scans, look for each face only around where the previous sampled
    # frame had it (a region a few face sizes wide); a face not found there, or a frame with no
    # face before it, gets a whole-frame scan. 1 = scan every whole frame. New people are
    # picked up at the next whole-frame scan.
    full_scan_every: int = 4
    # "exact": every box is the one full-resolution HOG (the reference app's detector) gives
    # that face, rebuilt from its own pyramid (ml_core.media.hog_exact; +~75 ms per 720p frame).
    # "fast": the working-scale box, the same face and place, but a near-tie between two
    # pyramid levels can make it 1.2x larger or smaller (IoU ~0.7) in about one box in five.
    boxes: str = "fast"

    @classmethod
    def for_recipe(cls, recipe: CropRecipe, frames=None, *, detector=None, boxes=None, **options):
        """The settings that make `recipe`'s crops: the one way a model's recipe becomes extraction.

        `detector` and `boxes` are explicit overrides (e.g. a faster detector on a CPU host; the
        worker records them in the result). Exact boxes are HOG's on the frame as decoded, whatever
        detector is asked for. `options`: the other ExtractConfig fields (limits, speed knobs).
        """
        boxes = boxes or recipe.boxes
        same_boxes = boxes == recipe.boxes
        detector, contrast = detection_for(
            boxes,
            detector or (recipe.detector if same_boxes else None),
            recipe.contrast if same_boxes else None,
        )
        return cls(
            frames=frames or recipe.frames,
            strategy=recipe.sampling,
            detector=detector,
            contrast=contrast,
            margin=recipe.margin,
            crop_size=recipe.size,
            boxes=boxes,
            **options,
        )

    def __post_init__(self):
        default_detector, default_contrast = detection_for(self.boxes, None, None)
        self.detector = self.detector or default_detector
        self.contrast = self.contrast or default_contrast
        if not MIN_FRAMES <= self.frames <= MAX_FRAMES:
            raise ValueError(f"frames must be between {MIN_FRAMES} and {MAX_FRAMES}, got {self.frames}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be 'uniform' or 'first-n', got {self.strategy!r}")
        if self.detector not in FACE_DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(FACE_DETECTORS)}, got {self.detector!r}")
        if self.contrast not in CONTRASTS:
            raise ValueError(f"contrast must be 'auto' or 'off', got {self.contrast!r}")
        if not 0 <= self.margin <= 1:
            raise ValueError(f"margin must be between 0 and 1, got {self.margin}")
        if self.boxes not in BOX_MODES:
            raise ValueError(f"boxes must be 'fast' or 'exact', got {self.boxes!r}")
        if self.boxes == "exact" and (self.detector, self.contrast) != EXACT_BOXES_DETECTION:
            raise ValueError(
                "exact boxes reproduce HOG on the frame as decoded; use detector='hog' and contrast='off'"
            )
        if self.full_scan_every < 1:
            raise ValueError(f"full_scan_every must be >= 1, got {self.full_scan_every}")
        if self.crop_size < 8 or self.work_max_side < 64:
            raise ValueError("crop_size must be >= 8 and work_max_side >= 64")

    def to_dict(self):
        return asdict(self)


@dataclass
class Face:
    box: tuple[int, int, int, int]  # (top, right, bottom, left), full-resolution upright frame, clamped
    confidence: float  # detector score (HOG: SVM margin, > 0; CNN: MMOD confidence; MTCNN: probability)
    identity: int
    crop: np.ndarray  # (crop_size, crop_size, 3) uint8 BGR: exactly what the model and the display get
    crop_box: tuple[int, int, int, int] | None = None  # the box with margin, clamped: the crop's source
    detector: str = "hog"  # which detector found it

    def to_dict(self):
        return {
            "box": list(self.box),
            "confidence": self.confidence,
            "identity": self.identity,
            "crop_box": list(self.crop_box) if self.crop_box else None,
            "detector": self.detector,
        }


@dataclass
class SampledFrame:
    index: int  # frame number in the video (presentation order)
    timestamp: float  # seconds
    faces: list[Face] = field(default_factory=list)

    def face(self, identity):
        return next((f for f in self.faces if f.identity == identity), None)

    def to_dict(self):
        return {"index": self.index, "timestamp": self.timestamp, "faces": [f.to_dict() for f in self.faces]}


@dataclass
class Identity:
    id: int
    frame_count: int
    mean_area: float  # pixels, full resolution

    def to_dict(self):
        return asdict(self)


@dataclass
class Extraction:
    video: VideoInfo
    config: ExtractConfig
    frames: list[SampledFrame]  # time order
    identities: list[Identity]  # main identity first
    main_identity: int
    timings: dict[str, float]  # seconds: probe, decode, detect, track, crop, total
    warnings: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)  # decoding and detection counters, working scale

    def track(self, identity=None):
        identity = self.main_identity if identity is None else identity
        return [(frame, face) for frame in self.frames if (face := frame.face(identity)) is not None]

    def missing_frames(self, identity=None):
        identity = self.main_identity if identity is None else identity
        return [frame.index for frame in self.frames if frame.face(identity) is None]

    def to_dict(self):
        return {
            "video": self.video.to_dict(),
            "config": self.config.to_dict(),
            "sampled_indices": [f.index for f in self.frames],
            "timestamps": [f.timestamp for f in self.frames],
            "frames": [f.to_dict() for f in self.frames],
            "identities": [
                {**i.to_dict(), "missing_frames": self.missing_frames(i.id)} for i in self.identities
            ],
            "main_identity": self.main_identity,
            "missing_frames": self.missing_frames(),
            "timings": self.timings,
            "warnings": self.warnings,
            "stats": self.stats,
        }


def crop_face(image, box, margin=0.0, size=112):
    """Crop `box` (+ margin on each side) from a BGR frame, clamped to the frame, resized to size x size.

    The aspect ratio is not kept, like the reference's Resize((112, 112)). Returns (crop, crop_box).
    """
    height, width = image.shape[:2]
    top, right, bottom, left = box
    dy, dx = int(round(margin * (bottom - top))), int(round(margin * (right - left)))
    crop_box = clamp_box((top - dy, right + dx, bottom + dy, left - dx), width, height)
    t, r, b, l = crop_box  # noqa: E741
    if b - t < 1 or r - l < 1:
        raise ValueError(f"empty crop for box {box} in a {width}x{height} frame")
    patch = image[t:b, l:r]
    return resize_square(patch, size), crop_box


class _Clock:
    def __init__(self):
        self.times = dict.fromkeys(("probe", "decode", "detect", "track", "crop"), 0.0)
        self.mark = time.perf_counter()

    def lap(self, stage):
        now = time.perf_counter()
        self.times[stage] += now - self.mark
        self.mark = now


def check_limits(info, max_duration):
    """VideoTooLong, saying the video's length and the limit, when `info` is over `max_duration`."""
    if max_duration is not None and info.duration > max_duration:
        raise VideoTooLong(
            f"{info.duration:.1f} s exceeds {max_duration:.0f} s",
            user_message=(
                f"This video is {info.duration:.0f} seconds long; the limit is {max_duration:.0f} "
                "seconds. Trim it to the part with the face and upload again."
            ),
        )


def extract_faces(path, config: ExtractConfig | None = None, info: VideoInfo | None = None) -> Extraction:
    """Sample frames, find and link faces, crop them. Raises the typed errors of ml_core.errors.

    `info`: the video's probe when the caller already made it (the limits are checked again).
    """
    config = config or ExtractConfig()
    started = time.perf_counter()
    clock = _Clock()
    info = info or probe(path, max_pixels=config.max_pixels)
    check_limits(info, config.max_duration)
    clock.lap("probe")

    finder = _FaceFinder(config, aligned_scale(info.width, info.height, config.work_max_side))
    tracker = Tracker()
    decode_stats = {}
    records = []  # (index, timestamp, [(Detection, identity, crop, crop_box)])
    # The decoder runs a frame ahead in a thread, so "decode" below is only the time spent
    # waiting for it.
    with closing(
        prefetched(
            iter_frames(
                path, config.frames, config.strategy, stats=decode_stats, max_pixels=config.max_pixels
            )
        )
    ) as frames:
        for decoded in frames:
            clock.lap("decode")
            detections = finder.find(decoded.image, len(records))
            clock.lap("detect")
            ids = tracker.update(decoded.image, detections)
            finder.seen(detections, ids, len(records))
            clock.lap("track")
            faces = []
            for det, identity in zip(detections, ids):
                crop, crop_box = crop_face(decoded.image, det.box, config.margin, config.crop_size)
                faces.append((det, identity, crop, crop_box))
            records.append((decoded.index, decoded.timestamp, faces))
            clock.lap("crop")
    clock.lap("decode")  # the decoder's last step, which found the end

    if not records:
        raise TruncatedVideo(f"{path}: no sampled frame could be decoded")
    warnings = _sampling_warnings(info, config, decode_stats, len(records))
    identities, renumber, dropped = _identities(records)
    if not identities:
        raise NoFaceFound(f"{path}: no face in {len(records)} sampled frames")
    if dropped:
        warnings.append(
            f"ignored {dropped} face detection(s) seen in only one sampled frame (likely false detections)"
        )
    frames = [
        SampledFrame(
            index=index,
            timestamp=timestamp,
            faces=[
                Face(
                    box=det.box,
                    confidence=det.confidence,
                    identity=renumber[i],
                    crop=crop,
                    crop_box=crop_box,
                    detector=det.source,
                )
                for det, i, crop, crop_box in faces
                if i in renumber
            ],
        )
        for index, timestamp, faces in records
    ]
    extraction = Extraction(
        video=info,
        config=config,
        frames=frames,
        identities=identities,
        main_identity=identities[0].id,
        timings={},
        warnings=warnings,
        stats={
            **decode_stats,
            "sampled": len(records),
            **finder.stats(),
            "encodings_computed": tracker.encodings_computed,
        },
    )
    if config.boxes == "exact" and not finder.exact:
        warnings.append("exact face boxes are not available with this dlib build: the fast ones were used")
    # Which detector found the faces the model gets: MTCNN's boxes are mapped, not HOG's own.
    extraction.stats["main_face_from_mtcnn"] = sum(f.detector == "mtcnn" for _, f in extraction.track())
    missing = extraction.missing_frames()
    if missing:
        warnings.append(
            f"main face not found in {len(missing)} of {len(frames)} sampled frames (frames {missing[:10]}"
            f"{'...' if len(missing) > 10 else ''}); those frames are left out, not replaced"
        )
    extraction.timings = {k: round(v, 4) for k, v in clock.times.items()}
    extraction.timings["total"] = round(time.perf_counter() - started, 4)
    return extraction


class _FaceFinder:
    """The faces in each sampled frame, found as cheaply as the frames before it allow.

    Whole-frame scans at the working scale (finer while small faces are about), every
    `full_scan_every` frames and whenever a face is not found near its last place; searches
    near each face's last place in between; a finer retry when a frame shows nobody, a closer
    look for someone seen in the last two samples and missing now; with "hog+mtcnn", MTCNN
    where HOG still sees nobody or that closer look failed; exact boxes if asked for. Dark or
    flat frames are scanned equalised.
    """

    def __init__(self, config, base_scale):
        self.config = config
        self.base_scale = self.scale = base_scale
        self.finest_scale = finer_scale(base_scale, 1)
        self.retry_scale = finer_scale(base_scale)
        self.exact = config.boxes == "exact" and hog_exact.available()
        self.previous = []  # boxes found in the previous sampled frame
        self.last_seen = {}  # identity -> (box, position of the sampled frame it was last seen in)
        self.counts = dict.fromkeys(
            ("full", "region", "retries", "close_looks", "exact", "equalised", "mtcnn"), 0
        )

    def find(self, image, position):
        config, counts = self.config, self.counts
        # The detectors scan `scanned` (dark frames equalised); crops are cut from `image`.
        scanned = detection_copy(image, config.contrast)
        counts["equalised"] += scanned is not image
        detector = "hog" if config.detector == "hog+mtcnn" else config.detector
        detections = None
        if self.previous and position % config.full_scan_every:
            counts["region"] += 1
            detections = _search_near(scanned, self.scale, detector, self.previous)
        if detections is None:
            counts["full"] += 1
            detections = detect(scanned, self.scale, detector)
            if self.scale < self.finest_scale and found_at_finest_level(detections, self.scale):
                # Small faces: full-resolution HOG would scan the next finer level too. Stay there.
                self.scale = self.finest_scale
                detections = detect(scanned, self.scale, detector)
            elif self.scale > self.base_scale and detections and all_large(detections, self.base_scale):
                self.scale = self.base_scale  # the small faces are gone (or came closer)
        if not detections and config.retry_finer and self.retry_scale > self.scale:
            counts["retries"] += 1
            detections = detect(scanned, self.retry_scale, detector)
        lost = False
        for box, seen in self.last_seen.values():
            if position - seen <= 2 and not any(_same_place(box, d.box) for d in detections):
                counts["close_looks"] += 1
                found = close_look(scanned, box, detector)
                detections += [d for d in found if all(iou(d.box, k.box) < LINK_IOU for k in detections)]
                lost = lost or not any(_same_place(box, d.box) for d in detections)
        if config.detector == "hog+mtcnn" and (not detections or lost):
            # Where HOG sees nobody, or lost someone seen a moment ago: dark, small or turned faces.
            counts["mtcnn"] += 1
            found = detect(scanned, min(self.scale, 1.0), "mtcnn")
            detections += [d for d in found if all(iou(d.box, k.box) < LINK_IOU for k in detections)]
        if self.exact and detections:
            detections = _exact_boxes(image, detections)
            counts["exact"] += len(detections)
        self.previous = [d.box for d in detections]
        return detections

    def seen(self, detections, identities, position):
        for det, identity in zip(detections, identities):
            self.last_seen[identity] = (det.box, position)

    def stats(self):
        counts = self.counts
        return {
            "work_scale": round(self.base_scale, 4),
            "final_scale": round(self.scale, 4),
            "retry_scale": round(self.retry_scale, 4),
            "detection_retries": counts["retries"],
            "whole_frame_scans": counts["full"],
            "region_scans": counts["region"],
            "close_looks": counts["close_looks"],
            "exact_boxes": counts["exact"] if self.exact else None,
            "face_detector": self.config.detector,
            "contrast": self.config.contrast,
            "equalised_frames": counts["equalised"],
            "mtcnn_scans": counts["mtcnn"],
        }


def _same_place(a, b):
    """Boxes close enough (centres within a face size) to be the same face a moment apart."""
    size = max(a[2] - a[0], a[1] - a[3], b[2] - b[0], b[1] - b[3])
    dy, dx = (a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2
    return dy * dy + dx * dx < size * size


def _search_near(image, scale, detector, previous):
    """Each face of the previous sampled frame, looked for near where it was; None if one is gone.

    A face that moved far, turned away or was a one-off, or a region now holding someone else,
    needs a whole-frame scan to tell; so does anything less than every face found again.
    """
    height, width = image.shape[:2]
    scan = working_scan(image, scale) if detector == "hog" and hog_exact.available() else None
    detections = []
    for box in previous:
        if scan is not None:
            found = [d for d in [region_search(scan, box, width, height)] if d is not None]
        else:
            found = detect(image, scale, detector, search_region(box, width, height))
        if not any(iou(d.box, box) >= LINK_IOU for d in found):
            return None
        detections += [d for d in found if all(iou(d.box, k.box) < 0.5 for k in detections)]
    return detections


def _exact_boxes(image, detections):
    """Replace each box by the one full-resolution HOG gives that face (kept when it would miss it)."""
    pyramid = hog_exact.ExactBoxes(image)
    height, width = image.shape[:2]
    exact = []
    for det in detections:
        found = pyramid.refine(det.box)
        if found is None:
            exact.append(det)
        else:
            box, score = found
            exact.append(Detection(box=clamp_box(box, width, height), confidence=round(score, 4)))
    return exact


def _sampling_warnings(info, config, stats, sampled):
    warnings = []
    total = stats.get("total_frames", info.frame_count)
    if total < config.frames:
        warnings.append(f"video has only {total} frames; used {sampled} of {config.frames} requested")
    if info.frame_count and total < info.frame_count - 1:
        warnings.append(
            f"the file holds {total} of the {info.frame_count} frames its header declares: it looks "
            "truncated; sampled from the frames present"
        )
    if stats.get("truncated_at") is not None:
        warnings.append(
            f"decoding stopped at frame {stats['truncated_at']} of {total}: the file looks truncated or "
            f"damaged; used {sampled} sampled frames"
        )
    return warnings


def _identities(records):
    """Identities ordered main first (most frames, then largest), renumbered 0..n-1.

    A track seen in a single sampled frame is dropped when some track was seen in several: with
    frames seconds apart, a one-off box is far more often a false detection than a person.
    """
    counts, areas = {}, {}
    for _, _, faces in records:
        for det, identity, _, _ in faces:
            counts[identity] = counts.get(identity, 0) + 1
            areas.setdefault(identity, []).append(box_area(det.box))
    if not counts:
        return [], {}, 0
    keep_min = 2 if max(counts.values()) >= 2 else 1
    kept = [i for i in counts if counts[i] >= keep_min]
    dropped = sum(counts[i] for i in counts if counts[i] < keep_min)
    kept.sort(key=lambda i: (-counts[i], -float(np.mean(areas[i]))))
    renumber = {old: new for new, old in enumerate(kept)}
    identities = [
        Identity(id=renumber[i], frame_count=counts[i], mean_area=round(float(np.mean(areas[i])), 1))
        for i in kept
    ]
    return identities, renumber, dropped
