"""Readers for the dataset layouts people train deepfake detectors on.

Every reader returns a `VideoDataset`: a list of `VideoItem`s with the label, where the video
came from (`source`), the manipulation method for fakes, the identities it shows (when the
dataset tells them, so splits can keep people apart) and the official split (when the dataset
has one). Readers only list files; nothing here decodes video.

Layouts:
- folder: `real/` and `fake/` sub-folders (fakes may sit in `fake/<method>/`);
- csv: the reference app's headerless `file,label` CSV with REAL/FAKE labels;
- celebdf: Celeb-DF v2 (Celeb-real/, YouTube-real/, Celeb-synthesis/, List_of_testing_videos.txt);
- ffpp: FaceForensics++ (original_sequences/..., manipulated_sequences/<method>/...);
- dfdc: DFDC folders with metadata.json.
"""

import csv
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ml_core.constants import VIDEO_EXTENSIONS

logger = logging.getLogger(__name__)

LABELS = ("REAL", "FAKE")
LAYOUTS = ("auto", "folder", "csv", "celebdf", "ffpp", "dfdc")


@dataclass(frozen=True)
class VideoItem:
    video_id: str  # unique within a dataset and stable across machines (a relative path)
    path: str  # absolute path to the video file
    label: str  # "REAL" | "FAKE"
    source: str = ""  # where it comes from inside the dataset (e.g. "YouTube-real", "youtube")
    method: str | None = None  # manipulation method for fakes ("Deepfakes", "Celeb-synthesis", ...)
    identities: tuple[str, ...] = ()  # people shown; empty when the dataset does not say
    official_split: str | None = None  # "train" | "val" | "test" when the dataset defines one
    original: str | None = None  # video_id of the real video a fake was made from (DFDC)

    @property
    def is_fake(self) -> bool:
        return self.label == "FAKE"

    def to_dict(self):
        data = asdict(self)
        data["identities"] = list(self.identities)
        return data

    @classmethod
    def from_dict(cls, data):
        return cls(**{**data, "identities": tuple(data.get("identities") or ())})


@dataclass
class VideoDataset:
    name: str
    layout: str
    root: str
    items: list[VideoItem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __len__(self):
        return len(self.items)

    def counts(self) -> dict[str, int]:
        return {label: sum(item.label == label for item in self.items) for label in LABELS}

    def only(self, label: str) -> "VideoDataset":
        return VideoDataset(self.name, self.layout, self.root, [i for i in self.items if i.label == label])


def _videos_under(folder: Path):
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _identity_from_pattern(pattern: re.Pattern | None, stem: str) -> tuple[str, ...]:
    """Identities from a file name: the regex's groups (or whole match), else none."""
    if pattern is None:
        return ()
    match = pattern.search(stem)
    if not match:
        return ()
    groups = [g for g in match.groups() if g] or [match.group(0)]
    return tuple(groups)


def _normalise_label(value: str, where: str) -> str:
    label = value.strip().upper()
    if label not in LABELS:
        raise ValueError(f"{where}: label must be REAL or FAKE, got {value!r}")
    return label


# File names that public datasets' own names survive in when their clips are collected into a
# plain real/ and fake/ folder (e.g. "ffpp_c23_Deepfakes_241_210.mp4", as in ../shared/training).
# Identities parsed this way are global ("ffpp:yt241"), so they join across merged datasets.
_NAMED_FFPP_FAKE = re.compile(
    r"(?:^|_)(Deepfakes|Face2Face|FaceSwap|NeuralTextures|FaceShifter)_(\d{3})_(\d{3})(?:$|_)"
)
_NAMED_FFPP_ACTORS_FAKE = re.compile(r"(?:^|_)DeepFakeDetection_(\d+)_(\d+)__")
_NAMED_FFPP_ACTOR = re.compile(r"(?:^|_)original_actors_(\d+)__")
_NAMED_FFPP_ORIGINAL = re.compile(r"(?:^|_)original_(\d{3})(?:$|_)")
_NAMED_CELEB_FAKE = re.compile(r"^celebdf_.*?(id\d+)_(id\d+)_\d{4}")
_NAMED_CELEB_REAL = re.compile(r"^celebdf_.*?(id\d+)_\d{4}")
GLOBAL_IDENTITY = ":"  # identities containing this are dataset-independent (see `merge`)


@dataclass(frozen=True)
class NamedClip:
    source: str
    method: str | None
    identities: tuple[str, ...]


def parse_public_name(stem: str) -> NamedClip | None:
    """Source, manipulation method and people of a clip named after a public dataset's file."""
    if stem.startswith("ffpp_"):
        if match := _NAMED_FFPP_FAKE.search(stem):
            return NamedClip("ffpp", match[1], (f"ffpp:yt{match[2]}", f"ffpp:yt{match[3]}"))
        if match := _NAMED_FFPP_ACTORS_FAKE.search(stem):
            return NamedClip("ffpp", "DeepFakeDetection", (f"ffpp:actor{match[1]}", f"ffpp:actor{match[2]}"))
        if match := _NAMED_FFPP_ACTOR.search(stem):
            return NamedClip("ffpp", None, (f"ffpp:actor{match[1]}",))
        if match := _NAMED_FFPP_ORIGINAL.search(stem):
            return NamedClip("ffpp", None, (f"ffpp:yt{match[1]}",))
        return NamedClip("ffpp", None, ())
    if stem.startswith("celebdf_"):
        if match := _NAMED_CELEB_FAKE.search(stem):
            return NamedClip("celebdf", "Celeb-synthesis", (f"celebdf:{match[1]}", f"celebdf:{match[2]}"))
        if match := _NAMED_CELEB_REAL.search(stem):
            return NamedClip("celebdf", None, (f"celebdf:{match[1]}",))
        return NamedClip("celebdf", None, ())
    if stem.startswith("dfdc_"):
        return NamedClip("dfdc", "DFDC", ())
    return None


def _label_folders(root: Path) -> list[tuple[str, Path]]:
    """`real/`, `fake/` and any `<name>_real/`, `<name>_fake/` (e.g. crops_fake/) under `root`."""
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        name = folder.name.lower()
        for label in ("real", "fake"):
            if name == label or name.endswith("_" + label):
                found.append((label.upper(), folder))
    return found


def read_folder(root, *, identity_pattern: str | None = None) -> VideoDataset:
    """`root/real/**` and `root/fake/**` (also `root/<name>_real/`, `root/<name>_fake/`).

    A fake in `fake/<name>/...` gets method `<name>`. A clip named after a public dataset's file
    (FaceForensics++, Celeb-DF, DFDC) gets that dataset as its source, its manipulation method and
    the people it shows. `identity_pattern` is an optional regex applied to file names (without
    extension); its groups name the people in the video, so splits can keep them apart.
    """
    root = Path(root).resolve()
    folders = _label_folders(root) if root.is_dir() else []
    if not folders:
        raise ValueError(f"{root} has neither a real/ nor a fake/ sub-folder")
    pattern = re.compile(identity_pattern) if identity_pattern else None
    items = []
    for label, folder in folders:
        for path in _videos_under(folder):
            parts = path.relative_to(folder).parts
            method = (parts[0] if len(parts) > 1 else "fake") if label == "FAKE" else None
            source, identities = folder.name, _identity_from_pattern(pattern, path.stem)
            named = parse_public_name(path.stem)
            if named:
                source = named.source
                method = (named.method or method) if label == "FAKE" else None
                identities = identities or named.identities
            items.append(
                VideoItem(
                    video_id=_relative(path, root),
                    path=str(path),
                    label=label,
                    source=source,
                    method=method,
                    identities=identities,
                )
            )
    return VideoDataset(root.name, "folder", str(root), _link_originals(items))


def _link_originals(items: list[VideoItem]) -> list[VideoItem]:
    """Point each FaceForensics++ fake at the real clip it was made from (its target's original).

    An FF++ fake "A_B" is video A with B's face: same scene, same frames. Training shows the two
    together so the detector has to learn the manipulation, not the scene.
    """
    originals = {
        item.identities[0]: item.video_id
        for item in items
        if not item.is_fake and len(item.identities) == 1 and item.source == "ffpp"
    }
    return [
        _with_original(item, originals.get(item.identities[0]))
        if item.is_fake and item.source == "ffpp" and item.identities and not item.original
        else item
        for item in items
    ]


def _with_original(item: VideoItem, original: str | None) -> VideoItem:
    return VideoItem(**{**item.__dict__, "original": original})


def read_label_csv(csv_path, *, video_root=None, identity_pattern: str | None = None) -> VideoDataset:
    """The reference app's headerless `file,label` CSV; paths are relative to the CSV's folder.

    A header row `file,label` is tolerated. Rows whose file is missing are skipped with a
    warning (counted in `warnings`), because label files often outlive some of their videos.
    """
    csv_path = Path(csv_path).resolve()
    root = Path(video_root).resolve() if video_root else csv_path.parent
    pattern = re.compile(identity_pattern) if identity_pattern else None
    items, warnings, seen = [], [], set()
    with csv_path.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise ValueError(f"{csv_path}:{number}: expected 'file,label', got {row!r}")
            name, label = row[0].strip(), row[1]
            if number == 1 and label.strip().lower() == "label":
                continue
            label = _normalise_label(label, f"{csv_path}:{number}")
            path = (root / name).resolve()
            if not path.is_file():
                # The reference app's CSVs list bare file names next to sub-folders of videos.
                matches = list(root.rglob(Path(name).name))
                if len(matches) == 1:
                    path = matches[0].resolve()
                else:
                    warnings.append(f"{csv_path.name}:{number}: {name} not found")
                    continue
            video_id = _relative(path, root) if path.is_relative_to(root) else str(path)
            if video_id in seen:
                warnings.append(f"{csv_path.name}:{number}: {name} listed twice; first label kept")
                continue
            seen.add(video_id)
            items.append(
                VideoItem(
                    video_id=video_id,
                    path=str(path),
                    label=label,
                    source=csv_path.stem,
                    method="fake" if label == "FAKE" else None,
                    identities=_identity_from_pattern(pattern, path.stem),
                )
            )
    for warning in warnings:
        logger.warning(warning)
    return VideoDataset(csv_path.stem, "csv", str(root), items, warnings)


_CELEB_REAL = re.compile(r"^(id\d+)_\d+$")
_CELEB_FAKE = re.compile(r"^(id\d+)_(id\d+)_\d+$")


def read_celebdf(root) -> VideoDataset:
    """Celeb-DF v2. List_of_testing_videos.txt ("1 YouTube-real/00170.mp4", 1 = real) is the test split."""
    root = Path(root).resolve()
    items, warnings = [], []
    test_list = root / "List_of_testing_videos.txt"
    test_labels = {}
    if test_list.is_file():
        for number, line in enumerate(test_list.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            flag, _, name = line.strip().partition(" ")
            if flag not in ("0", "1") or not name:
                raise ValueError(f"{test_list.name}:{number}: expected '<0|1> <path>', got {line!r}")
            test_labels[name.strip()] = "REAL" if flag == "1" else "FAKE"
    else:
        warnings.append("List_of_testing_videos.txt not found: no official test split")
    for folder, label in (("Celeb-real", "REAL"), ("YouTube-real", "REAL"), ("Celeb-synthesis", "FAKE")):
        for path in _videos_under(root / folder):
            video_id = _relative(path, root)
            if label == "FAKE":
                match = _CELEB_FAKE.match(path.stem)
                identities = match.groups() if match else ()
            elif folder == "Celeb-real":
                match = _CELEB_REAL.match(path.stem)
                identities = match.groups() if match else ()
            else:
                identities = ()  # YouTube-real clips are unnamed people, one per clip
            listed = test_labels.pop(video_id, None)
            if listed is not None and listed != label:
                warnings.append(f"{video_id} is {label} by folder but {listed} in the test list; folder kept")
            items.append(
                VideoItem(
                    video_id=video_id,
                    path=str(path),
                    label=label,
                    source=folder,
                    method="Celeb-synthesis" if label == "FAKE" else None,
                    identities=tuple(identities),
                    official_split="test" if listed is not None else None,
                )
            )
    if test_list.is_file():
        items = [_with_split(item, "test" if item.official_split == "test" else "train") for item in items]
    if test_labels:
        warnings.append(f"{len(test_labels)} videos of the test list are missing on disk")
    if not items:
        raise ValueError(f"{root} has no Celeb-real/, YouTube-real/ or Celeb-synthesis/ videos")
    for warning in warnings:
        logger.warning(warning)
    return VideoDataset("Celeb-DF-v2", "celebdf", str(root), items, warnings)


def _with_split(item: VideoItem, split: str) -> VideoItem:
    return VideoItem(**{**item.__dict__, "official_split": split})


_FFPP_ACTOR = re.compile(r"^(\d+)__")
_FFPP_ACTOR_FAKE = re.compile(r"^(\d+)_(\d+)__")
_FFPP_YOUTUBE_FAKE = re.compile(r"^(\d+)_(\d+)$")


def read_ffpp(root, *, compression: str = "c23") -> VideoDataset:
    """FaceForensics++ at one compression level (raw, c23 or c40).

    Identities: YouTube video 000 shows person "yt000"; a fake 000_003 shows 000 (target) and
    003 (source face). DeepFakeDetection actors (original_sequences/actors, 01__kitchen_pan.mp4)
    are "actor01". Official splits are read from splits/{train,val,test}.json when present.
    """
    root = Path(root).resolve()
    items = []
    originals = root / "original_sequences"
    for source_dir in sorted(p for p in originals.glob("*") if p.is_dir()):
        for path in _videos_under(source_dir / compression / "videos"):
            items.append(
                VideoItem(
                    video_id=_relative(path, root),
                    path=str(path),
                    label="REAL",
                    source=source_dir.name,
                    identities=_ffpp_identities(path.stem, source_dir.name == "actors"),
                )
            )
    for method_dir in sorted(p for p in (root / "manipulated_sequences").glob("*") if p.is_dir()):
        actors = method_dir.name == "DeepFakeDetection"
        for path in _videos_under(method_dir / compression / "videos"):
            items.append(
                VideoItem(
                    video_id=_relative(path, root),
                    path=str(path),
                    label="FAKE",
                    source="actors" if actors else "youtube",
                    method=method_dir.name,
                    identities=_ffpp_identities(path.stem, actors),
                )
            )
    if not items:
        raise ValueError(f"{root} has no FaceForensics++ videos at compression {compression!r}")
    splits = _ffpp_official_splits(root / "splits")
    if splits:
        items = [_with_split(item, _ffpp_split_of(item, splits)) for item in items]
    return VideoDataset(f"FaceForensics++-{compression}", "ffpp", str(root), items)


def _ffpp_identities(stem: str, actors: bool) -> tuple[str, ...]:
    prefix = "actor" if actors else "yt"
    for pattern in (_FFPP_ACTOR_FAKE, _FFPP_YOUTUBE_FAKE, _FFPP_ACTOR):
        match = pattern.match(stem)
        if match:
            return tuple(prefix + group for group in match.groups())
    return (prefix + stem,) if stem.isdigit() else ()


def _ffpp_official_splits(folder: Path) -> dict[str, str]:
    """Map every YouTube id in the official pair lists to its split."""
    result = {}
    for split in ("train", "val", "test"):
        file = folder / f"{split}.json"
        if file.is_file():
            for pair in json.loads(file.read_text()):
                for video in pair:
                    result["yt" + str(video)] = split
    return result


def _ffpp_split_of(item: VideoItem, splits: dict[str, str]) -> str | None:
    found = {splits.get(identity) for identity in item.identities} - {None}
    return found.pop() if len(found) == 1 else None


def read_dfdc(root) -> VideoDataset:
    """DFDC: every metadata.json under `root` ({"abc.mp4": {"label", "split", "original"}}).

    DFDC does not name people, but each fake names the real video it was made from; fakes are
    grouped with their original (as "identity") so a split never puts a fake and its source on
    different sides.
    """
    root = Path(root).resolve()
    files = sorted(root.rglob("metadata.json"))
    if not files:
        raise ValueError(f"{root} has no metadata.json")
    items, warnings = [], []
    for file in files:
        folder = file.parent
        metadata = json.loads(file.read_text())
        for name, entry in sorted(metadata.items()):
            path = folder / name
            if not path.is_file():
                warnings.append(f"{_relative(path, root)} is in metadata.json but missing on disk")
                continue
            label = _normalise_label(str(entry.get("label", "")), f"{file}: {name}")
            original = entry.get("original")
            prefix = _relative(folder, root)
            prefix = "" if prefix == "." else prefix + "/"
            group = prefix + (original if (label == "FAKE" and original) else name)
            items.append(
                VideoItem(
                    video_id=_relative(path, root),
                    path=str(path),
                    label=label,
                    source=folder.name if folder != root else "dfdc",
                    method="dfdc" if label == "FAKE" else None,
                    identities=(group,),
                    official_split=entry.get("split"),
                    original=(prefix + original) if original else None,
                )
            )
    for warning in warnings:
        logger.warning(warning)
    return VideoDataset("DFDC", "dfdc", str(root), items, warnings)


def detect_layout(path) -> str:
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return "csv"
        raise ValueError(f"{path} is a file but not a .csv label file")
    if not path.is_dir():
        raise ValueError(f"{path} does not exist")
    if (path / "List_of_testing_videos.txt").is_file() or (path / "Celeb-synthesis").is_dir():
        return "celebdf"
    if (path / "original_sequences").is_dir() or (path / "manipulated_sequences").is_dir():
        return "ffpp"
    if (path / "metadata.json").is_file() or any(path.glob("*/metadata.json")):
        return "dfdc"
    if _label_folders(path):
        return "folder"
    raise ValueError(
        f"Cannot tell the layout of {path}: expected real/ and fake/ folders, a label CSV, "
        "Celeb-DF v2, FaceForensics++ or DFDC (metadata.json)"
    )


def load_dataset(
    path, layout: str = "auto", *, compression: str = "c23", identity_pattern=None
) -> VideoDataset:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    if layout == "auto":
        layout = detect_layout(path)
    if layout == "folder":
        return read_folder(path, identity_pattern=identity_pattern)
    if layout == "csv":
        return read_label_csv(path, identity_pattern=identity_pattern)
    if layout == "celebdf":
        return read_celebdf(path)
    if layout == "ffpp":
        return read_ffpp(path, compression=compression)
    return read_dfdc(path)


def merge(datasets: list[VideoDataset]) -> VideoDataset:
    """Several datasets as one; video ids are prefixed with the dataset name when there are several."""
    if len(datasets) == 1:
        return datasets[0]
    items, warnings = [], []
    for dataset in datasets:
        for item in dataset.items:
            items.append(
                VideoItem(
                    **{
                        **item.__dict__,
                        "video_id": f"{dataset.name}/{item.video_id}",
                        "source": f"{dataset.name}/{item.source}" if item.source else dataset.name,
                        "identities": tuple(
                            i if GLOBAL_IDENTITY in i else f"{dataset.name}/{i}" for i in item.identities
                        ),
                        "original": f"{dataset.name}/{item.original}" if item.original else None,
                    }
                )
            )
        warnings.extend(dataset.warnings)
    return VideoDataset("+".join(d.name for d in datasets), "merged", "", items, warnings)
