import json
from pathlib import Path

import pytest

from ml_core.training.datasets import (
    detect_layout,
    load_dataset,
    merge,
    read_celebdf,
    read_dfdc,
    read_ffpp,
    read_folder,
    read_label_csv,
)
from tests.helpers.videos import make_face_video


def touch(root, *names):
    for name in names:
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def by_id(dataset):
    return {item.video_id: item for item in dataset.items}


def test_it_reads_real_and_fake_folders_with_methods_and_identity_patterns(tmp_path):
    (tmp_path / "real").mkdir()
    make_face_video(tmp_path / "real" / "actor01_a.mp4", count=3)
    touch(tmp_path, "real/actor02_b.MOV", "fake/faceswap/actor01_x.mp4", "fake/plain.mp4", "real/notes.txt")
    dataset = read_folder(tmp_path, identity_pattern=r"^actor(\d+)_")
    items = by_id(dataset)
    assert set(items) == {
        "real/actor01_a.mp4",
        "real/actor02_b.MOV",
        "fake/faceswap/actor01_x.mp4",
        "fake/plain.mp4",
    }
    assert items["fake/faceswap/actor01_x.mp4"].method == "faceswap"
    assert items["fake/faceswap/actor01_x.mp4"].identities == ("01",)
    assert items["fake/plain.mp4"].identities == ()
    assert items["real/actor02_b.MOV"].label == "REAL"
    assert dataset.counts() == {"REAL": 2, "FAKE": 2}
    assert detect_layout(tmp_path) == "folder"


def test_it_reads_the_reference_headerless_label_csv(tmp_path):
    touch(tmp_path, "videos/a.mp4", "videos/b.mp4", "c.mp4")
    csv = tmp_path / "labels.csv"
    csv.write_text("videos/a.mp4,REAL\nb.mp4,fake\nc.mp4,FAKE\nmissing.mp4,REAL\n")
    dataset = load_dataset(csv)
    items = by_id(dataset)
    assert items["videos/a.mp4"].label == "REAL"
    assert items["videos/b.mp4"].label == "FAKE"  # bare name found under a sub-folder
    assert items["c.mp4"].label == "FAKE"
    assert len(dataset.warnings) == 1 and "missing.mp4" in dataset.warnings[0]


def test_it_rejects_an_unknown_label_in_the_csv(tmp_path):
    touch(tmp_path, "a.mp4")
    (tmp_path / "labels.csv").write_text("a.mp4,MAYBE\n")
    with pytest.raises(ValueError, match="labels.csv:1"):
        read_label_csv(tmp_path / "labels.csv")


def test_it_reads_celeb_df_with_its_official_test_list_and_identities(tmp_path):
    touch(
        tmp_path,
        "Celeb-real/id0_0000.mp4",
        "Celeb-real/id1_0001.mp4",
        "YouTube-real/00170.mp4",
        "YouTube-real/00171.mp4",
        "Celeb-synthesis/id0_id1_0000.mp4",
        "Celeb-synthesis/id2_id3_0004.mp4",
    )
    (tmp_path / "List_of_testing_videos.txt").write_text(
        "1 YouTube-real/00170.mp4\n0 Celeb-synthesis/id2_id3_0004.mp4\n"
    )
    dataset = read_celebdf(tmp_path)
    items = by_id(dataset)
    assert detect_layout(tmp_path) == "celebdf"
    assert items["Celeb-synthesis/id0_id1_0000.mp4"].identities == ("id0", "id1")
    assert items["Celeb-synthesis/id0_id1_0000.mp4"].label == "FAKE"
    assert items["Celeb-real/id1_0001.mp4"].identities == ("id1",)
    assert items["YouTube-real/00170.mp4"].source == "YouTube-real"
    assert {k for k, v in items.items() if v.official_split == "test"} == {
        "YouTube-real/00170.mp4",
        "Celeb-synthesis/id2_id3_0004.mp4",
    }
    assert items["Celeb-real/id0_0000.mp4"].official_split == "train"


def test_it_reads_faceforensics_with_methods_and_pair_identities(tmp_path):
    touch(
        tmp_path,
        "original_sequences/youtube/c23/videos/000.mp4",
        "original_sequences/youtube/c23/videos/003.mp4",
        "original_sequences/youtube/c40/videos/000.mp4",
        "manipulated_sequences/Deepfakes/c23/videos/000_003.mp4",
        "manipulated_sequences/NeuralTextures/c23/videos/003_000.mp4",
        "original_sequences/actors/c23/videos/01__kitchen_pan.mp4",
        "manipulated_sequences/DeepFakeDetection/c23/videos/01_02__meeting_serious__YVGY8LOK.mp4",
    )
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "test.json").write_text(json.dumps([["000", "003"]]))
    dataset = read_ffpp(tmp_path, compression="c23")
    items = by_id(dataset)
    assert detect_layout(tmp_path) == "ffpp"
    assert len(items) == 6  # c40 ignored
    fake = items["manipulated_sequences/Deepfakes/c23/videos/000_003.mp4"]
    assert (fake.label, fake.method, fake.identities) == ("FAKE", "Deepfakes", ("yt000", "yt003"))
    assert items["manipulated_sequences/NeuralTextures/c23/videos/003_000.mp4"].method == "NeuralTextures"
    assert items["original_sequences/youtube/c23/videos/000.mp4"].identities == ("yt000",)
    assert items["original_sequences/youtube/c23/videos/000.mp4"].official_split == "test"
    dfd = items["manipulated_sequences/DeepFakeDetection/c23/videos/01_02__meeting_serious__YVGY8LOK.mp4"]
    assert dfd.identities == ("actor01", "actor02")
    assert items["original_sequences/actors/c23/videos/01__kitchen_pan.mp4"].identities == ("actor01",)


def test_it_reads_dfdc_metadata_and_groups_fakes_with_their_original(tmp_path):
    touch(tmp_path, "part0/xyz.mp4", "part0/abc.mp4", "part0/def.mp4")
    (tmp_path / "part0" / "metadata.json").write_text(
        json.dumps(
            {
                "abc.mp4": {"label": "FAKE", "split": "train", "original": "xyz.mp4"},
                "xyz.mp4": {"label": "REAL", "split": "train", "original": None},
                "def.mp4": {"label": "FAKE", "split": "train", "original": "gone.mp4"},
                "lost.mp4": {"label": "REAL", "split": "train", "original": None},
            }
        )
    )
    dataset = read_dfdc(tmp_path)
    items = by_id(dataset)
    assert detect_layout(tmp_path) == "dfdc"
    assert items["part0/abc.mp4"].identities == items["part0/xyz.mp4"].identities
    assert items["part0/abc.mp4"].original == "part0/xyz.mp4"
    assert items["part0/abc.mp4"].official_split == "train"
    assert "lost.mp4" in dataset.warnings[0]


def test_it_prefixes_ids_when_merging_datasets(tmp_path):
    touch(tmp_path, "a/real/x.mp4", "b/real/x.mp4")
    merged = merge([read_folder(tmp_path / "a"), read_folder(tmp_path / "b")])
    assert sorted(item.video_id for item in merged.items) == ["a/real/x.mp4", "b/real/x.mp4"]


def test_it_explains_an_unknown_layout(tmp_path):
    with pytest.raises(ValueError, match="real/ and fake/"):
        detect_layout(tmp_path)


def test_the_cache_knows_where_the_face_sits_inside_a_crop_with_margin():
    from ml_core.training.cache import face_in_crop

    # 100 px face, 25% margin -> a 150 px crop resized to 112: the face spans 25..125 of 150.
    assert face_in_crop((100, 200, 200, 100), 0.25, 1000, 1000, 112) == pytest.approx(
        (18.67, 93.33, 93.33, 18.67), abs=0.01
    )
    # At the frame's corner the margin is cut off on the top and left.
    assert face_in_crop((0, 100, 100, 0), 0.5, 1000, 1000, 150) == pytest.approx((0, 100, 100, 0))


def test_it_reads_public_dataset_names_in_a_plain_folder(tmp_path):
    touch(
        tmp_path,
        "real/ffpp_c23_original_033.mp4",
        "real/ffpp_c40_original_actors_07__talking_against_wall.mp4",
        "fake/ffpp_c23_Deepfakes_033_097.mp4",
        "fake/ffpp_c23_Face2Face_097_033.mp4",
        "fake/ffpp_c23_DeepFakeDetection_22_23__outside_talking__W9MT3Q5K.mp4",
        "crops_fake/celebdf_facecrop_id0_id1_0005_segment_1.mp4",
        "crops_fake/dfdc_part0_facecrop_0_aaqaifqrwn_0_0.mp4",
        "crops_real/celebdf_facecrop_id21_0009_segment_1.mp4",
        "fake/someone_elses_clip.mp4",
    )
    items = by_id(read_folder(tmp_path))
    deepfake = items["fake/ffpp_c23_Deepfakes_033_097.mp4"]
    assert (deepfake.source, deepfake.method) == ("ffpp", "Deepfakes")
    assert deepfake.identities == ("ffpp:yt033", "ffpp:yt097")
    # Same scene as original 033 (the target); 097's original is not in the folder.
    assert deepfake.original == "real/ffpp_c23_original_033.mp4"
    assert items["fake/ffpp_c23_Face2Face_097_033.mp4"].original is None
    actors = items["fake/ffpp_c23_DeepFakeDetection_22_23__outside_talking__W9MT3Q5K.mp4"]
    assert (actors.method, actors.identities) == ("DeepFakeDetection", ("ffpp:actor22", "ffpp:actor23"))
    actor = items["real/ffpp_c40_original_actors_07__talking_against_wall.mp4"]
    assert (actor.label, actor.method, actor.identities) == ("REAL", None, ("ffpp:actor07",))
    celeb = items["crops_fake/celebdf_facecrop_id0_id1_0005_segment_1.mp4"]
    assert (celeb.label, celeb.source, celeb.method) == ("FAKE", "celebdf", "Celeb-synthesis")
    assert celeb.identities == ("celebdf:id0", "celebdf:id1")
    assert items["crops_real/celebdf_facecrop_id21_0009_segment_1.mp4"].identities == ("celebdf:id21",)
    dfdc = items["crops_fake/dfdc_part0_facecrop_0_aaqaifqrwn_0_0.mp4"]
    assert (dfdc.label, dfdc.source, dfdc.method, dfdc.identities) == ("FAKE", "dfdc", "DFDC", ())
    other = items["fake/someone_elses_clip.mp4"]
    assert (other.source, other.method, other.identities) == ("fake", "fake", ())


def test_it_recognises_a_folder_of_only_labelled_crop_folders(tmp_path):
    touch(tmp_path, "crops_real/a.mp4", "crops_fake/b.mp4", "unlabelled/c.mp4")
    assert detect_layout(tmp_path) == "folder"
    assert {item.label for item in load_dataset(tmp_path).items} == {"REAL", "FAKE"}
    assert len(load_dataset(tmp_path).items) == 2


def test_merging_keeps_public_identities_shared_across_datasets(tmp_path):
    touch(
        tmp_path, "a/real/ffpp_c23_original_033.mp4", "b/fake/ffpp_c23_Deepfakes_097_033.mp4", "b/real/x.mp4"
    )
    merged = by_id(merge([read_folder(tmp_path / "a"), read_folder(tmp_path / "b")]))
    assert merged["a/real/ffpp_c23_original_033.mp4"].identities == ("ffpp:yt033",)
    assert "ffpp:yt033" in merged["b/fake/ffpp_c23_Deepfakes_097_033.mp4"].identities
