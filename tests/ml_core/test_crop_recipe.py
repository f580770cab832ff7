"""The crop recipe travels with the model: inference makes exactly the crops training cached."""

import json

import numpy as np
import pytest

from ml_core.cli import train
from ml_core.crop_recipe import CropRecipe
from ml_core.inference.analysis import analyse
from ml_core.inference.predictor import Predictor
from ml_core.media.extraction import ExtractConfig, extract_faces
from ml_core.model.checkpoints import load_checkpoint
from ml_core.model.detector import DetectorConfig
from ml_core.training.cache import CacheConfig, VideoCache
from ml_core.training.datasets import read_folder
from tests.helpers.videos import make_face_video


def test_inference_without_any_setting_makes_the_crops_training_cached(tmp_path):
    data = tmp_path / "data"
    (data / "real").mkdir(parents=True)
    (data / "fake").mkdir()
    for i in range(4):
        make_face_video(data / "real" / f"r{i}.mp4", count=12, seed=i, face_size=120 + 10 * i)
    for i in range(2):
        make_face_video(data / "fake" / f"f{i}.mp4", count=12, seed=10 + i, face_size=150, move=False)
    run_dir = tmp_path / "run"
    # Every crop setting away from its default: MTCNN alone (its boxes are not HOG's, so its crops
    # differ from the default detector's), no equalisation, a margin, another size.
    recipe_args = ["--detector", "mtcnn", "--contrast", "off", "--margin", "0.15", "--image-size", "48"]
    train.main(
        ["--data", str(data), "--out", str(run_dir), "--cache-dir", str(tmp_path / "cache")]
        + ["--backbone", "tiny", "--frames", "4", "--cache-frames", "10", "--batch-size", "4"]
        + ["--epochs", "1", "--cache-workers", "1", "--no-progress", "--val-fraction", "0.34"]
        + recipe_args
    )
    checkpoint = load_checkpoint(run_dir / "best.pt")
    recipe = checkpoint.config.crop_recipe
    assert (recipe.detector, recipe.contrast, recipe.margin, recipe.size) == ("mtcnn", "off", 0.15, 48)
    cached = json.loads((run_dir / "config.json").read_text())["cache"]
    cache_settings = (cached["detector"], cached["contrast"], cached["margin"], cached["crop_size"])
    assert cache_settings == ("mtcnn", "off", 0.15, 48)

    cache = VideoCache(tmp_path / "cache", CacheConfig.from_recipe(recipe, frames=10))
    item = next(i for i in read_folder(data).items if i.video_id == "real/r1.mp4")
    trained_on = cache.load(item)
    assert trained_on is not None
    analysis = analyse(item.path, lambda: Predictor(run_dir / "best.pt"), frames=10)
    seen = {frame.index: face.crop for frame, face in analysis.extraction.track()}
    assert sorted(seen) == trained_on.frame_indices.tolist()
    for index, crop in zip(trained_on.frame_indices.tolist(), trained_on.crops):
        assert np.array_equal(seen[index], crop), f"frame {index}: the model sees other pixels than it learnt"
    assert analysis.details()["crop_recipe_overrides"] == {}
    assert analysis.details()["face_detector"] == "mtcnn" and analysis.details()["contrast"] == "off"
    # The control: the service's default detector gives other pixels, so the recipe is what matched.
    default = extract_faces(item.path, ExtractConfig(frames=10, margin=0.15, crop_size=48))
    other = {frame.index: face.crop for frame, face in default.track()}
    assert any(not np.array_equal(other[i], seen[i]) for i in seen if i in other)


def test_an_explicit_override_is_applied_and_recorded(tmp_path):
    from tests.helpers.checkpoints import make_tiny_checkpoint

    video = make_face_video(tmp_path / "face.mp4", count=20)
    predictor = Predictor(make_tiny_checkpoint(tmp_path / "t.pt", sequence_length=10))
    assert predictor.config.crop_recipe.detector == "hog+mtcnn"
    analysis = analyse(video, lambda: predictor, detector="hog", boxes="")
    assert analysis.extraction.config.detector == "hog"
    assert analysis.details()["crop_recipe_overrides"] == {"detector": "hog"}


def test_reference_checkpoints_get_the_preprocessing_they_were_trained_with():
    recipe = DetectorConfig.reference().crop_recipe
    assert (recipe.boxes, recipe.detector, recipe.contrast, recipe.margin) == ("exact", "hog", "off", 0.0)
    assert (recipe.size, recipe.channel_order) == (112, "BGR")
    # Exact boxes are HOG's: a detector asked for does not change them.
    config = ExtractConfig.for_recipe(recipe, detector="hog+mtcnn")
    assert (config.boxes, config.detector, config.contrast) == ("exact", "hog", "off")


def test_a_recipe_refuses_exact_boxes_from_another_detector_and_unknown_names():
    with pytest.raises(ValueError, match="exact boxes"):
        CropRecipe(boxes="exact", detector="hog+mtcnn", contrast="auto")
    with pytest.raises(ValueError, match="detector"):
        CropRecipe(detector="sonar")
    with pytest.raises(ValueError, match="face_boxes|detector"):
        DetectorConfig(face_detector="sonar")


def test_a_checkpoint_made_before_the_recipe_was_recorded_gets_the_default_it_was_trained_with():
    stored = DetectorConfig.lite("efficientnet_lite0", margin=0.25, image_size=160).to_dict()
    del stored["face_detector"], stored["contrast"]
    recipe = DetectorConfig.from_dict(stored).crop_recipe
    assert (recipe.detector, recipe.contrast, recipe.boxes) == ("hog+mtcnn", "auto", "fast")
