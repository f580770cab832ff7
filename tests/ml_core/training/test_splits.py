from collections import Counter

import pytest

from ml_core.training.datasets import VideoItem
from ml_core.training.splits import identity_groups, load_split, make_folds, make_split, split_for


def ffpp_like(people=20):
    items = []
    for person in range(people):
        items.append(
            VideoItem(
                f"real/{person:03d}.mp4", f"/d/real/{person:03d}.mp4", "REAL", identities=(f"p{person}",)
            )
        )
        source = (person + 1) % people
        items.append(
            VideoItem(
                f"fake/{person:03d}_{source:03d}.mp4",
                "/d/x.mp4",
                "FAKE",
                method="Deepfakes",
                identities=(f"p{person}", f"p{source}"),
            )
        )
    return items


def no_identities(count=50):
    return [VideoItem(f"v{i}.mp4", f"/d/v{i}.mp4", "FAKE" if i % 5 == 0 else "REAL") for i in range(count)]


def test_it_repeats_a_split_for_the_same_seed_whatever_the_order():
    items = no_identities()
    first = make_split(items, seed=3)
    again = make_split(list(reversed(items)), seed=3)
    other = make_split(items, seed=4)
    assert first.assignments == again.assignments
    assert first.assignments != other.assignments


def test_it_stratifies_by_label():
    items = no_identities(100)  # 20 fakes, 80 reals
    split = make_split(items, val_fraction=0.2, test_fraction=0.1, seed=0)
    counts = split.counts(items)
    assert counts["val"] == {"REAL": 16, "FAKE": 4}
    assert counts["test"] == {"REAL": 8, "FAKE": 2}
    assert counts["train"] == {"REAL": 56, "FAKE": 14}


def test_it_keeps_people_on_one_side_of_the_split():
    # Chains of swaps join person p with p+1; cut the chain into several groups with gaps.
    items = [
        item for item in ffpp_like(30) if not item.video_id.startswith("fake/") or int(item.video_id[5:8]) % 3
    ]
    split = make_split(items, val_fraction=0.3, seed=1)
    sides = {}
    for item in items:
        for person in item.identities:
            sides.setdefault(person, set()).add(split.assignments[item.video_id])
    assert all(len(found) == 1 for found in sides.values())
    assert split.identity_disjoint
    assert Counter(split.assignments.values())["val"] > 0


def test_it_joins_videos_that_share_a_person_through_a_swap():
    groups = identity_groups(ffpp_like(4))
    assert len(groups) == 1  # 0-1, 1-2, 2-3, 3-0 swaps join everyone


def test_it_keeps_official_test_videos_in_test():
    items = no_identities(20)
    items = [
        VideoItem(**{**item.__dict__, "official_split": "test" if i < 5 else "train"})
        for i, item in enumerate(items)
    ]
    split = make_split(items, val_fraction=0.25, test_fraction=0.2, seed=0)
    assert split.ids("test") == {item.video_id for item in items[:5]}
    assert len(split.ids("val")) > 0


def test_it_writes_the_split_and_reuses_it(tmp_path):
    items = no_identities(30)
    path = tmp_path / "split.json"
    split = split_for(items, path, seed=7)
    assert load_split(path).assignments == split.assignments
    assert split_for(items, path, seed=99).assignments == split.assignments  # the file wins
    with pytest.raises(ValueError, match="does not assign"):
        split_for(items + [VideoItem("new.mp4", "/d/new.mp4", "REAL")], path)


def test_it_gives_every_split_its_share_of_each_source():
    # Source "crops" has only unnamed fakes (groups of one); "ffpp" has pairs of people who swap
    # faces. Dealt by label alone, the small groups fill the fake quota of val and test and
    # ffpp's fakes all land in train.
    items = []
    for pair in range(10):
        a, b = f"p{2 * pair}", f"p{2 * pair + 1}"
        for person, other in ((a, b), (b, a)):
            items.append(
                VideoItem(f"real/{person}.mp4", "/r.mp4", "REAL", source="ffpp", identities=(person,))
            )
            items.append(
                VideoItem(
                    f"fake/{person}_{other}.mp4", "/f.mp4", "FAKE", source="ffpp", identities=(person, other)
                )
            )
    items += [VideoItem(f"crops/{i}.mp4", f"/c/{i}.mp4", "FAKE", source="crops") for i in range(20)]
    split = make_split(items, val_fraction=0.2, test_fraction=0.2, seed=0)
    per = Counter((split.assignments[item.video_id], item.source, item.label) for item in items)
    for name in ("val", "test"):
        assert per[(name, "ffpp", "FAKE")] >= 4
        assert per[(name, "ffpp", "REAL")] >= 4
        assert per[(name, "crops", "FAKE")] >= 3


def test_cross_validation_folds_test_every_video_once_and_keep_people_apart():
    items = [
        item for item in ffpp_like(40) if not item.video_id.startswith("fake/") or int(item.video_id[5:8]) % 4
    ] + no_identities(30)
    folds = make_folds(items, folds=5, seed=2)
    assert len(folds) == 5
    tested = Counter(video_id for split in folds for video_id in split.ids("test"))
    assert sorted(tested) == sorted(item.video_id for item in items) and set(tested.values()) == {1}
    validated = Counter(video_id for split in folds for video_id in split.ids("val"))
    assert set(validated.values()) == {1}  # each part validates exactly one fold
    for split in folds:
        assert split.ids("val").isdisjoint(split.ids("test"))
        sides = {}
        for item in items:
            for person in item.identities:
                sides.setdefault(person, set()).add(split.assignments[item.video_id])
        assert all(len(found) == 1 for found in sides.values())
        counts = split.counts(items)
        assert counts["test"]["FAKE"] > 0 and counts["test"]["REAL"] > 0
    assert make_folds(list(reversed(items)), folds=5, seed=2)[0].assignments == folds[0].assignments
    with pytest.raises(ValueError, match="at least 3"):
        make_folds(items, folds=2)
