"""A generated folder (its MANIFEST.tsv) as a `VideoDataset` the training code can use.

Each fake carries its target's (and its source's) identities and points at its real
counterpart as `original`, so identity-disjoint splits keep a fake, its source person and its
untouched real on one side. When the fakes were made with a split file, `official_split` is
the target's split.
"""

import csv
import json
from pathlib import Path

from ml_core.training.datasets import VideoDataset, VideoItem

MANIFEST = "MANIFEST.tsv"
SKIPPED = "skipped.tsv"
COLUMNS = (
    "label",
    "local_file",
    "kind",
    "method",
    "target_video_id",
    "source_video_id",
    "original",
    "compression",
    "seed",
    "segment_start_s",
    "frames",
    "fps",
    "width",
    "height",
    "identities",
    "split",
    "params",
    "bytes",
    "sha256",
)


def read_manifest(root) -> list[dict]:
    path = Path(root) / MANIFEST
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def read_generated(root, *, compressions=None) -> VideoDataset:
    """The generated fakes and their reals under `root`, optionally only some compressions."""
    root = Path(root).resolve()
    if not (root / MANIFEST).is_file():
        raise ValueError(f"{root} has no {MANIFEST}: not a folder written by ml_core.cli.make_fakes")
    items, warnings = [], []
    for row in read_manifest(root):
        if compressions and row["compression"] not in compressions:
            continue
        path = root / row["local_file"]
        if not path.is_file():
            warnings.append(f"{row['local_file']} is in {MANIFEST} but missing on disk")
            continue
        items.append(
            VideoItem(
                video_id=row["local_file"],
                path=str(path),
                label=row["label"],
                source=f"generated/{row['compression']}",
                method=row["method"] or None,
                identities=tuple(json.loads(row["identities"])),
                official_split=row["split"] or None,
                original=row["original"] or None,
            )
        )
    return VideoDataset(root.name, "generated", str(root), items, warnings)
