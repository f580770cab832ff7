import csv
import json

import av
import numpy as np
import pytest

from ml_core.media.compression import PRESETS, write_video
from ml_core.training.datasets import VideoItem
from ml_core.training.fakes import generate as gen
from ml_core.training.fakes.landmarks import LandmarkConfig, track_landmarks
from ml_core.training.fakes.reader import read_generated
from ml_core.training.fakes.segments import read_segment
from ml_core.training.seeding import rng_for
from tests.helpers.videos import face_frames

# Two people in train, two in test; a faceless clip and a text file posing as a video in train.
SPLITS = {
    "real/a.mp4": "train",
    "real/b.mp4": "train",
    "real/c.mp4": "test",
    "real/e.mp4": "test",
    "real/blank.mp4": "train",
    "real/text.mp4": "train",
}


def small_config(**changes):
    settings = {
        "compressions": ("c23",),
        "segment_seconds": 1.5,
        "source_seconds": 1.0,
        "landmarks": LandmarkConfig(min_frames=8),
        "contact_samples": 4,
    }
    return gen.GenerateConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reals")
    result = []
    for number, person in enumerate("abce"):
        path = folder / f"{person}.mp4"
        write_video(face_frames(count=20, face_size=240, seed=number), path, PRESETS["c23"], rate=10)
        result.append(VideoItem(f"real/{person}.mp4", str(path), "REAL", identities=(f"p:{person}",)))
    blank = folder / "blank.mp4"
    write_video([np.full((240, 320, 3), 90, np.uint8)] * 20, blank, PRESETS["c23"], rate=10)
    text = folder / "text.mp4"
    text.write_text("this is not a video\n")
    result.append(VideoItem("real/blank.mp4", str(blank), "REAL"))
    result.append(VideoItem("real/text.mp4", str(text), "REAL"))
    return result


@pytest.fixture(scope="module")
def generated(items, tmp_path_factory):
    out = tmp_path_factory.mktemp("fakes")
    report = gen.generate(items, out, small_config(), splits=SPLITS)
    return out, report


def test_sources_come_from_the_targets_split_and_never_show_the_target():
    people = [
        VideoItem("x1", "/x1", "REAL", identities=("p:x",)),
        VideoItem("x2", "/x2", "REAL", identities=("p:x",)),  # the same person, another clip
        VideoItem("y", "/y", "REAL", identities=("p:y",)),
        VideoItem("z", "/z", "REAL", identities=("p:z",)),
        VideoItem("w", "/w", "REAL"),  # nobody named: its own person
        VideoItem("f", "/f", "FAKE", identities=("p:q",)),
    ]
    splits = {"x1": "test", "x2": "test", "y": "test", "z": "train", "w": "test", "f": "test"}
    found = {item.video_id for item in gen.source_candidates(people[0], people, splits)}
    assert found == {"y", "w"}
    assert {item.video_id for item in gen.source_candidates(people[0], people, None)} == {"y", "z", "w"}
    stranger = VideoItem("s", "/s", "REAL", identities=("p:s",))
    assert gen.source_candidates(stranger, people, splits) == []  # not in the split: no source


def test_it_writes_each_fake_and_its_real_counterpart(generated):
    out, report = generated
    rows = list(csv.DictReader((out / "MANIFEST.tsv").open(), delimiter="\t"))
    fakes = [row for row in rows if row["label"] == "FAKE"]
    reals = {row["local_file"]: row for row in rows if row["label"] == "REAL"}
    assert {row["kind"] for row in fakes} == {"swap", "mouth"}
    assert report.fakes == {"swap": 4, "mouth": 4}
    for row in fakes:
        assert (out / row["local_file"]).is_file()
        assert row["local_file"].startswith(f"{row['kind']}/c23/")
        real = reals[row["original"]]
        assert real["target_video_id"] == row["target_video_id"]
        assert (real["frames"], real["segment_start_s"]) == (row["frames"], row["segment_start_s"])
        assert json.loads(row["params"])
    assert (out / "contact_swap.png").stat().st_size > 0
    assert (out / "contact_mouth.png").stat().st_size > 0


def test_a_test_clips_fakes_stay_in_test_with_a_face_from_test(generated):
    out, _ = generated
    rows = list(csv.DictReader((out / "MANIFEST.tsv").open(), delimiter="\t"))
    swaps = [row for row in rows if row["kind"] == "swap"]
    assert swaps
    for row in swaps:
        assert row["split"] == SPLITS[row["target_video_id"]]
        assert SPLITS[row["source_video_id"]] == row["split"]
        target, source = json.loads(row["identities"])
        assert target != source
    assert {row["split"] for row in rows if row["target_video_id"] == "real/c.mp4"} == {"test"}


def test_bad_clips_are_skipped_with_a_reason(generated):
    out, report = generated
    skipped = list(csv.DictReader((out / "skipped.tsv").open(), delimiter="\t"))
    reasons = {(row["video_id"], row["reason"]) for row in skipped}
    assert ("real/blank.mp4", "no_face") in reasons
    assert ("real/text.mp4", "unreadable") in reasons
    assert report.reasons()["no_face"] >= 1 and report.reasons()["unreadable"] >= 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped"] == report.reasons()


def test_the_reader_lists_fakes_with_their_method_people_and_split(generated):
    out, _ = generated
    dataset = read_generated(out)
    fakes = [item for item in dataset.items if item.is_fake]
    assert {item.method for item in fakes} == {"gen-swap", "gen-mouth"}
    by_id = {item.video_id: item for item in dataset.items}
    for item in fakes:
        assert item.original in by_id and not by_id[item.original].is_fake
        assert item.identities[0] == by_id[item.original].identities[0]
    swapped = [item for item in fakes if item.method == "gen-swap"]
    assert all(len(item.identities) == 2 for item in swapped)
    assert {item.official_split for item in dataset.items if "_c_" in item.video_id} <= {"test"}


def test_the_same_seed_gives_byte_identical_fake_frames(items):
    target = items[0]
    config = small_config()
    segment = read_segment(target.path, 0.0, 1.5, 720)
    track = track_landmarks(segment.frames, config.landmarks)
    frames = segment.frames[track.start : track.start + len(track.landmarks)]
    source = gen.SourcePool(config).face(items[1])

    def fake(kind, seed):
        rng = rng_for(seed, kind, target.video_id, 0)
        return gen.make_fake(kind, frames, track.landmarks, 10.0, rng, config, source)

    for kind in ("swap", "mouth"):
        first, params, _ = fake(kind, 0)
        again, params_again, _ = fake(kind, 0)
        assert params == params_again
        assert all(np.array_equal(a, b) for a, b in zip(first, again))
        assert fake(kind, 1)[1] != params


def decoded(path):
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)])


def test_a_second_run_with_the_same_seed_writes_the_same_files(items, generated, tmp_path):
    out, _ = generated
    gen.generate(items[:2], tmp_path, small_config(), splits=SPLITS, targets=items[:1])
    again = list(csv.DictReader((tmp_path / "MANIFEST.tsv").open(), delimiter="\t"))
    first = {row["local_file"]: row for row in csv.DictReader((out / "MANIFEST.tsv").open(), delimiter="\t")}
    assert again
    for row in again:
        assert row["params"] == first[row["local_file"]]["params"]
        # The frames before H.264 are byte-identical (test above); swscale and libx264 as built
        # here are not always bit-reproducible, so the files are compared by their pictures.
        ours, theirs = decoded(tmp_path / row["local_file"]), decoded(out / row["local_file"])
        assert ours.shape == theirs.shape
        assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 1.0
