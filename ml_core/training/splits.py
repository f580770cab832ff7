"""Seeded, stratified, identity-disjoint train/val/test splits, written to a file.

Videos that share a person (directly, or through a fake that swaps two people) are joined into
one group with a union-find; whole groups are then dealt to the splits so that every split gets
its share of reals and of fakes. Videos whose dataset names no identity form a group of one.
The result depends only on the seed and the set of video ids (not on listing order).
"""

import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml_core.io import write_json
from ml_core.training.datasets import VideoItem

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    assignments: dict[str, str]  # video_id -> "train" | "val" | "test"
    seed: int
    fractions: dict[str, float]
    identity_disjoint: bool
    notes: list[str] = field(default_factory=list)

    def ids(self, split: str) -> set[str]:
        return {video_id for video_id, name in self.assignments.items() if name == split}

    def select(self, items: list[VideoItem], split: str) -> list[VideoItem]:
        return [item for item in items if self.assignments.get(item.video_id) == split]

    def counts(self, items: list[VideoItem]) -> dict[str, dict[str, int]]:
        result = {name: {"REAL": 0, "FAKE": 0} for name in SPLITS}
        for item in items:
            name = self.assignments.get(item.video_id)
            if name:
                result[name][item.label] += 1
        return result

    def to_dict(self):
        return {
            "seed": self.seed,
            "fractions": self.fractions,
            "identity_disjoint": self.identity_disjoint,
            "notes": self.notes,
            "assignments": dict(sorted(self.assignments.items())),
        }

    @classmethod
    def from_dict(cls, data):
        return cls(
            assignments=dict(data["assignments"]),
            seed=int(data["seed"]),
            fractions=dict(data["fractions"]),
            identity_disjoint=bool(data["identity_disjoint"]),
            notes=list(data.get("notes", [])),
        )


def identity_groups(items: list[VideoItem]) -> dict[str, list[VideoItem]]:
    """Videos joined by any shared identity; key = the smallest video id in the group."""
    parent: dict[str, str] = {}

    def find(node):
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    def union(a, b):
        root_a, root_b = find(a), find(b)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)

    for item in items:
        node = "video:" + item.video_id
        find(node)
        for identity in item.identities:
            union(node, "person:" + identity)
        if item.original:
            union(node, "video:" + item.original)
    groups = defaultdict(list)
    for item in items:
        groups[find("video:" + item.video_id)].append(item)
    return {min(i.video_id for i in members): members for members in groups.values()}


def make_split(
    items: list[VideoItem],
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    seed: int = 0,
    use_official: bool = True,
) -> Split:
    """Deal identity groups to train/val/test, stratified by label.

    With `use_official`, videos whose dataset defines a split keep it (Celeb-DF's test list,
    DFDC's metadata, FaceForensics++'s JSON files); the validation set is then carved out of the
    official training part, and `test_fraction` only applies to videos with no official split.
    """
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction and test_fraction must be in [0, 1) and sum to less than 1")
    items = sorted(items, key=lambda item: item.video_id)
    ids = [item.video_id for item in items]
    if len(set(ids)) != len(ids):
        duplicates = [video_id for video_id, count in Counter(ids).items() if count > 1]
        raise ValueError(f"duplicate video ids: {duplicates[:5]}")
    assignments, notes = {}, []
    free = items
    if use_official and any(item.official_split for item in items):
        fixed = [item for item in items if item.official_split in ("test", "val")]
        for item in fixed:
            assignments[item.video_id] = item.official_split
        free = [item for item in items if item.official_split not in ("test", "val")]
        notes.append(f"{len(fixed)} videos keep their official split")
        if any(item.official_split == "val" for item in items):
            val_fraction = 0.0
        if any(item.official_split == "test" for item in items):
            test_fraction = 0.0
    fractions = {"train": 1 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction}
    groups = identity_groups(free)
    identity_disjoint = any(item.identities or item.original for item in items)
    assignments.update(_deal(groups, fractions, seed))
    if use_official and any(item.official_split for item in items):
        leaked = _shared_identities(items, assignments)
        if leaked:
            notes.append(
                f"{len(leaked)} identities appear in more than one split because the official split "
                "puts them there (e.g. Celeb-DF's test list)"
            )
    return Split(assignments, seed, fractions, identity_disjoint, notes)


def _deal(groups: dict[str, list[VideoItem]], fractions: dict[str, float], seed: int) -> dict[str, str]:
    """Each group to one part (the keys of `fractions`, in their order), stratified by source and label."""
    rng = np.random.default_rng(seed)
    keys = sorted(groups)
    rng.shuffle(keys)
    # Big groups first (stable for equal sizes, so the shuffle decides among them): they are the
    # hardest to place without overshooting a split's share.
    keys.sort(key=lambda key: -len(groups[key]))
    # Strata are (source, label): each split gets its share of every source's reals and fakes,
    # not just of reals and fakes overall (one source's fakes must not all land in one split).
    totals = Counter(_stratum(item) for members in groups.values() for item in members)
    targets = {
        name: {stratum: share * totals[stratum] for stratum in totals} for name, share in fractions.items()
    }
    current = {name: Counter() for name in fractions}
    assignments = {}
    for key in keys:
        members = groups[key]
        composition = Counter(_stratum(item) for item in members)
        candidates = [name for name, share in fractions.items() if share > 0]
        scores = np.array([_need(composition, targets[name], current[name], totals) for name in candidates])
        best = np.flatnonzero(scores == scores.max())
        chosen = candidates[int(rng.choice(best))]
        current[chosen].update(composition)
        for item in members:
            assignments[item.video_id] = chosen
    return assignments


def make_folds(items: list[VideoItem], *, folds: int = 5, seed: int = 0) -> list[Split]:
    """Identity-disjoint k-fold cross-validation: `folds` splits in which every video is tested once.

    Identity groups are dealt to `folds` equal parts as `make_split` deals them to train/val/test
    (stratified by source and label); split i tests on part i, validates (chooses its epoch and
    threshold) on part i + 1 and trains on the rest. Datasets' official splits are ignored: each
    video must be tested exactly once.
    """
    if folds < 3:
        raise ValueError("cross-validation needs at least 3 folds (train, validation and test parts)")
    items = sorted(items, key=lambda item: item.video_id)
    parts = [f"part{index}" for index in range(folds)]
    dealt = _deal(identity_groups(items), {part: 1 / folds for part in parts}, seed)
    identity_disjoint = any(item.identities or item.original for item in items)
    fractions = {"train": (folds - 2) / folds, "val": 1 / folds, "test": 1 / folds}
    splits = []
    for index in range(folds):
        role = {parts[index]: "test", parts[(index + 1) % folds]: "val"}
        assignments = {video_id: role.get(part, "train") for video_id, part in dealt.items()}
        splits.append(
            Split(assignments, seed, fractions, identity_disjoint, [f"fold {index + 1} of {folds}"])
        )
    return splits


def _stratum(item: VideoItem) -> tuple[str, str]:
    return (item.source or "", item.label)


def _need(composition, target, current, totals) -> float:
    """How much of a group's strata a split still lacks, relative to each stratum's size."""
    return sum(
        count * (target[stratum] - current[stratum]) / totals[stratum]
        for stratum, count in composition.items()
    )


def _shared_identities(items, assignments) -> set[str]:
    seen = defaultdict(set)
    for item in items:
        for identity in item.identities:
            seen[identity].add(assignments.get(item.video_id))
    return {identity for identity, splits in seen.items() if len(splits) > 1}


def save_split(split: Split, path) -> Path:
    return write_json(path, split.to_dict())


def load_split(path) -> Split:
    return Split.from_dict(json.loads(Path(path).read_text()))


def split_for(items, path=None, **kwargs) -> Split:
    """Reuse the split file at `path` when it exists (repeatable runs), else make and save one."""
    if path and Path(path).is_file():
        split = load_split(path)
        missing = [item.video_id for item in items if item.video_id not in split.assignments]
        if missing:
            raise ValueError(
                f"{path} does not assign {len(missing)} of the videos (e.g. {missing[0]}); "
                "delete it or pass another --split file"
            )
        logger.info("using split file %s", path)
        return split
    split = make_split(items, **kwargs)
    if path:
        save_split(split, path)
    return split
