"""Make fakes from a list of real clips, write them with their real counterparts, list them.

For every target clip (a real `VideoItem`) and every one of `per_clip` segments, a few seconds
starting at a seeded random offset are decoded and tracked (`landmarks`); each requested kind
of fake is made from that segment, and the fakes and the untouched segment are written through
the same encoder at every requested compression:

    OUT/<kind>/<compression>/<name>.mp4      the fakes
    OUT/real/<compression>/<name>.mp4        the real counterparts (same frames, same encoder)
    OUT/MANIFEST.tsv                         one row per file (see reader.COLUMNS)
    OUT/skipped.tsv, OUT/summary.json        what was refused and why; counts and timings
    OUT/contact_<kind>.png                   target | fake | difference for a few fakes

A swap's source face comes from another real clip of a different person and, when a split is
given, of the same split as the target, so a test person's fake stays in test and no fake
carries a face from the other side. Every random choice comes from a generator seeded by the
run's seed and the clip's id, so the same seed and inputs give the same fake frames.
"""

import csv
import hashlib
import io
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ml_core.errors import MlCoreError
from ml_core.io import atomic_write, write_json
from ml_core.media.compression import PRESETS, write_video
from ml_core.training.datasets import VideoItem
from ml_core.training.fakes import contact, mouth, swap
from ml_core.training.fakes.landmarks import REASONS, LandmarkConfig, track_landmarks, yaw
from ml_core.training.fakes.mouth import MouthConfig
from ml_core.training.fakes.reader import COLUMNS, MANIFEST, SKIPPED
from ml_core.training.fakes.segments import Segment, duration_of, read_segment
from ml_core.training.fakes.swap import SwapConfig
from ml_core.training.seeding import rng_for

logger = logging.getLogger(__name__)

KINDS = ("swap", "mouth")
METHODS = {"swap": "gen-swap", "mouth": "gen-mouth"}
SKIP_REASONS = ("unreadable", "too_short", "not_in_split", "no_source", *REASONS, "error")
# What a file that is not a readable video raises on the way in (anything else is a bug: "error").
READ_ERRORS = (MlCoreError, OSError, ValueError, EOFError)


@dataclass(frozen=True)
class GenerateConfig:
    kinds: tuple[str, ...] = KINDS
    per_clip: int = 1  # fakes of each kind per target clip, each from its own segment
    compressions: tuple[str, ...] = ("c23",)  # names in ml_core.media.compression.PRESETS
    segment_seconds: float = 4.0
    source_seconds: float = 1.0  # of the swap source's clip, tracked to pick its face from
    max_side: int = 720  # frames are shrunk to this before anything else (speed)
    seed: int = 0
    source_tries: int = 8  # source clips tried before a swap is given up ("no_source")
    source_max_yaw: float = 0.25  # sources must be nearer frontal than targets (see landmarks.yaw)
    contact_samples: int = 12  # per kind
    landmarks: LandmarkConfig = field(default_factory=LandmarkConfig)
    swap: SwapConfig = field(default_factory=SwapConfig)
    mouth: MouthConfig = field(default_factory=MouthConfig)

    def __post_init__(self):
        unknown = [kind for kind in self.kinds if kind not in KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"kinds must be some of {', '.join(KINDS)}, got {list(self.kinds)}")
        missing = [name for name in self.compressions if name not in PRESETS]
        if missing or not self.compressions:
            raise ValueError(
                f"compressions must be some of {', '.join(PRESETS)}, got {list(self.compressions)}"
            )
        if self.per_clip < 1 or self.segment_seconds <= 0 or self.source_seconds <= 0:
            raise ValueError("per_clip must be at least 1 and the segment lengths positive")

    def to_dict(self):
        return asdict(self)


@dataclass(frozen=True)
class Skip:
    video_id: str
    role: str  # "target" | "source"
    segment: int  # which of the clip's segments (-1: the whole clip)
    reason: str  # one of SKIP_REASONS
    detail: str = ""


@dataclass
class SourceFace:
    """A short run of another person's frames (cropped around the face) and their landmarks."""

    item: VideoItem
    frames: list[np.ndarray]
    landmarks: np.ndarray  # (S, 68, 2) in crop pixels
    start: float


@dataclass
class Fake:
    kind: str
    frames: list[np.ndarray]
    params: dict
    source: VideoItem | None
    sample: contact.Sample


@dataclass
class Report:
    rows: list[dict] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    fakes: Counter = field(default_factory=Counter)  # per kind (clips, not files)
    targets: int = 0
    seconds: float = 0.0
    fake_seconds: list[float] = field(default_factory=list)  # per fake clip, its encodes included

    def reasons(self) -> dict[str, int]:
        counts = Counter(skip.reason for skip in self.skipped)
        return {reason: counts[reason] for reason in SKIP_REASONS if counts[reason]}

    def summary(self) -> str:
        made = ", ".join(f"{count} {kind}" for kind, count in sorted(self.fakes.items())) or "no fakes"
        skipped = ", ".join(f"{reason} {count}" for reason, count in self.reasons().items()) or "none"
        per_fake = self.seconds / max(sum(self.fakes.values()), 1)
        return (
            f"{self.targets} targets: {made} ({len(self.rows)} files); skipped: {skipped}; "
            f"{self.seconds:.1f} s, {per_fake:.1f} s per fake"
        )


def identities_of(item: VideoItem) -> tuple[str, ...]:
    """The people a clip shows; a clip whose dataset names nobody counts as its own person."""
    return item.identities or (f"clip:{item.video_id}",)


def source_candidates(
    target: VideoItem, items: list[VideoItem], splits: dict[str, str] | None
) -> list[VideoItem]:
    """Real clips a swap into `target` may take its face from: another person, same split."""
    people = set(identities_of(target))
    side = splits.get(target.video_id) if splits is not None else None
    return [
        item
        for item in items
        if not item.is_fake
        and item.video_id != target.video_id
        and not people & set(identities_of(item))
        and (splits is None or (side is not None and splits.get(item.video_id) == side))
    ]


def segment_start(duration: float, seconds: float, rng: np.random.Generator) -> float:
    return float(rng.uniform(0, max(0.0, duration - seconds))) if duration > seconds else 0.0


def _slug(item: VideoItem) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(item.video_id).stem)[:48]
    # Stems repeat across datasets (and folders): a short hash of the id keeps names unique.
    return f"{stem}_{hashlib.sha256(item.video_id.encode()).hexdigest()[:6]}"


def _read(item: VideoItem, rng: np.random.Generator, seconds: float, max_side: int) -> Segment:
    start = segment_start(duration_of(item.path), seconds, rng)
    return read_segment(item.path, start, seconds, max_side)


class SourcePool:
    """Swap sources, tracked once per clip and remembered (refusals too)."""

    def __init__(self, config: GenerateConfig):
        self.config = config
        self.cache: dict[str, SourceFace | Skip] = {}
        self.refused: list[Skip] = []  # each refused source once, however often it was drawn

    def face(self, item: VideoItem) -> SourceFace | Skip:
        if item.video_id not in self.cache:
            self.cache[item.video_id] = found = self._load(item)
            if isinstance(found, Skip):
                self.refused.append(found)
        return self.cache[item.video_id]

    def _load(self, item: VideoItem) -> SourceFace | Skip:
        config = self.config
        try:
            segment = _read(
                item,
                rng_for(config.seed, "source-segment", item.video_id),
                config.source_seconds,
                config.max_side,
            )
        except READ_ERRORS as exc:
            return Skip(item.video_id, "source", -1, "unreadable", str(exc)[:200])
        if not segment.frames:
            return Skip(item.video_id, "source", -1, "unreadable", "no frame decoded")
        track = track_landmarks(segment.frames, _short_config(config.landmarks, len(segment)))
        if not track.ok:
            return Skip(item.video_id, "source", -1, track.reason, track.detail)
        turned = float(np.median([abs(yaw(points)) for points in track.landmarks]))
        if turned > config.source_max_yaw:
            # A turned source warped onto a frontal target stretches one side of the face.
            return Skip(item.video_id, "source", -1, "profile", f"median yaw {turned:.2f} for a source")
        frames = segment.frames[track.start : track.start + len(track.landmarks)]
        # Keep only the face and its surroundings: a few crops instead of whole frames in memory.
        y0, y1, x0, x1 = contact.face_square(track.landmarks.reshape(-1, 2), frames[0].shape, grow=0.6)
        crops = [np.ascontiguousarray(frame[y0:y1, x0:x1]) for frame in frames]
        return SourceFace(item, crops, track.landmarks - np.array([x0, y0], np.float32), segment.start)

    def choose(self, target, items, splits, rng) -> SourceFace | None:
        """The first usable face among up to `source_tries` candidates, in a seeded order."""
        candidates = sorted(source_candidates(target, items, splits), key=lambda item: item.video_id)
        for index in rng.permutation(len(candidates))[: self.config.source_tries]:
            found = self.face(candidates[index])
            if isinstance(found, SourceFace):
                return found
        return None


def _short_config(config: LandmarkConfig, frames: int) -> LandmarkConfig:
    """A short source run: every frame counts, so accept a run as short as the segment allows."""
    return replace(config, min_frames=min(config.min_frames, max(1, frames // 2)))


def make_fake(kind, frames, landmarks, fps, rng, config: GenerateConfig, source: SourceFace | None = None):
    """One fake of `kind` from tracked frames; returns (fake frames, params dict, middle-frame mask)."""
    middle = len(frames) // 2
    fakes, middle_mask = [], None
    if kind == "swap":
        params = swap.sample_params(rng, config.swap)
        source_frames, source_points = source.frames, source.landmarks
        flip = swap.facing_other_way(landmarks, source_points)
        if flip:
            source_frames, source_points = swap.mirrored(source_frames, source_points)
        results = swap.swap_clip(frames, landmarks, source_frames, source_points, params, config.swap)
        extra = {"source_start_s": round(source.start, 3), "source_mirrored": flip}
    else:
        params = mouth.sample_params(rng, fps, config.mouth)
        results = mouth.mouth_clip(frames, landmarks, params)
        extra = {}
    for t, result in enumerate(results):
        fakes.append(result.image)
        if t == middle:
            middle_mask = result.mask
    return fakes, {**params.to_dict(), **extra}, middle_mask


def generate(
    items: list[VideoItem],
    out,
    config: GenerateConfig | None = None,
    *,
    splits: dict[str, str] | None = None,
    targets: list[VideoItem] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Make fakes of every kind for each real target (default: every real clip in `items`).

    `items` is the pool swap sources are drawn from; `splits` maps video_id -> split name.
    A bad clip is skipped with a reason, never raised.
    """
    config = config or GenerateConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report = Report()
    reals = [item for item in items if not item.is_fake]
    targets = [item for item in (targets if targets is not None else reals) if not item.is_fake]
    pool = SourcePool(config)
    samples = {kind: [] for kind in config.kinds}
    for number, target in enumerate(targets, start=1):
        report.targets += 1
        try:
            _one_target(target, reals, splits, config, out, pool, report, samples)
        except Exception as exc:  # a bug must not lose the whole run: log it, count it, go on
            logger.exception("making fakes from %s failed", target.video_id)
            report.skipped.append(Skip(target.video_id, "target", -1, "error", repr(exc)[:200]))
        report.skipped.extend(pool.refused)
        pool.refused.clear()
        _write_tables(out, report)
        report.seconds = time.perf_counter() - started
        if progress:
            progress(f"[{number}/{len(targets)}] {target.video_id}: {report.summary()}")
    for kind, chosen in samples.items():
        contact.write_contact_sheet(chosen, out / f"contact_{kind}.png")
    report.seconds = time.perf_counter() - started
    write_json(
        out / "summary.json",
        {
            "summary": report.summary(),
            "fakes": dict(report.fakes),
            "skipped": report.reasons(),
            "targets": report.targets,
            "files": len(report.rows),
            "seconds": round(report.seconds, 1),
            "seconds_per_fake": [round(s, 2) for s in report.fake_seconds],
            "config": config.to_dict(),
        },
    )
    return report


def _one_target(target, reals, splits, config, out, pool, report, samples):
    split = ""
    if splits is not None:
        if target.video_id not in splits:
            report.skipped.append(Skip(target.video_id, "target", -1, "not_in_split"))
            return
        split = splits[target.video_id]
    for number in range(config.per_clip):
        clock = time.perf_counter()
        rng = rng_for(config.seed, "segment", target.video_id, number)
        try:
            segment = _read(target, rng, config.segment_seconds, config.max_side)
        except READ_ERRORS as exc:
            report.skipped.append(Skip(target.video_id, "target", -1, "unreadable", str(exc)[:200]))
            return
        wanted = max(1, round(config.segment_seconds * float(segment.rate)))
        if len(segment) < min(config.landmarks.min_frames, wanted):
            report.skipped.append(
                Skip(target.video_id, "target", number, "too_short", f"{len(segment)} frames")
            )
            return
        track = track_landmarks(segment.frames, config.landmarks)
        if not track.ok:
            report.skipped.append(Skip(target.video_id, "target", number, track.reason, track.detail))
            continue
        frames = segment.frames[track.start : track.start + len(track.landmarks)]
        made = []
        for kind in config.kinds:
            source = None
            if kind == "swap":
                source = pool.choose(
                    target, reals, splits, rng_for(config.seed, "source", target.video_id, number)
                )
                if source is None:
                    report.skipped.append(Skip(target.video_id, "target", number, "no_source"))
                    continue
            rng = rng_for(config.seed, kind, target.video_id, number)
            fakes, params, mask = make_fake(
                kind, frames, track.landmarks, float(segment.rate), rng, config, source
            )
            name = f"{kind}_{_slug(target)}_s{number}" + (f"_from_{_slug(source.item)}" if source else "")
            middle = len(frames) // 2
            if len(samples[kind]) < config.contact_samples:
                samples[kind].append(
                    contact.sample(name, frames[middle], fakes[middle], mask, track.landmarks[middle])
                )
            made.append((kind, name, fakes, params, source))
        if not made:
            continue
        common = {
            "target": target,
            "seed": config.seed,
            "split": split,
            "segment_start_s": round(segment.start + track.start / float(segment.rate), 3),
            "frames": len(frames),
            "fps": round(float(segment.rate), 3),
        }
        for compression in config.compressions:
            real_file = f"real/{compression}/real_{_slug(target)}_s{number}.mp4"
            _write(
                out, real_file, frames, compression, segment.rate, report, common, label="REAL", kind="real"
            )
            for kind, name, fakes, params, source in made:
                _write(
                    out,
                    f"{kind}/{compression}/{name}.mp4",
                    fakes,
                    compression,
                    segment.rate,
                    report,
                    common,
                    label="FAKE",
                    kind=kind,
                    source=source,
                    original=real_file,
                    params=params,
                )
        for kind, *_ in made:
            report.fakes[kind] += 1
        # What one fake costs: tracking, making and encoding it (and its share of the real's encodes).
        report.fake_seconds.extend([(time.perf_counter() - clock) / len(made)] * len(made))


def _write(
    out,
    local_file,
    frames,
    compression,
    rate,
    report,
    common,
    *,
    label,
    kind,
    source=None,
    original="",
    params=None,
):
    written = write_video(frames, out / local_file, PRESETS[compression], rate=rate)
    target = common["target"]
    people = list(identities_of(target)) + (list(identities_of(source.item)) if source else [])
    report.rows.append(
        {
            "label": label,
            "local_file": local_file,
            "kind": kind,
            "method": METHODS.get(kind, ""),
            "target_video_id": target.video_id,
            "source_video_id": source.item.video_id if source else "",
            "original": original,
            "compression": compression,
            "seed": common["seed"],
            "segment_start_s": common["segment_start_s"],
            "frames": common["frames"],
            "fps": common["fps"],
            "width": written["width"],
            "height": written["height"],
            "identities": json.dumps(people),
            "split": common["split"],
            "params": json.dumps(params or {}, sort_keys=True),
            "bytes": written["bytes"],
            "sha256": hashlib.sha256((out / local_file).read_bytes()).hexdigest(),
        }
    )


def _write_tables(out: Path, report: Report) -> None:
    """MANIFEST.tsv and skipped.tsv, rewritten whole after every target (a stopped run keeps its list)."""
    _write_tsv(out / MANIFEST, COLUMNS, report.rows)
    skipped = [asdict(skip) for skip in report.skipped]
    _write_tsv(out / SKIPPED, ("video_id", "role", "segment", "reason", "detail"), skipped)


def _write_tsv(path: Path, columns, rows) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(path, "w") as handle:
        handle.write(buffer.getvalue())
