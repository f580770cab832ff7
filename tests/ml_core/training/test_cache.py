import functools

import cv2

from ml_core.media import extraction
from ml_core.training.cache import CacheConfig


def test_the_cache_folder_changes_with_a_default_the_config_does_not_name(monkeypatch):
    before = CacheConfig().folder_name
    monkeypatch.setattr(
        extraction.ExtractConfig,
        "__init__",
        functools.partialmethod(extraction.ExtractConfig.__init__, work_max_side=640),
    )
    assert CacheConfig().extract_config().work_max_side == 640
    assert CacheConfig().folder_name != before


def test_the_cache_folder_changes_with_the_face_finding_version_and_the_libraries(monkeypatch):
    before = CacheConfig().folder_name
    monkeypatch.setattr(extraction, "FACE_FINDING_VERSION", extraction.FACE_FINDING_VERSION + 1)
    bumped = CacheConfig().folder_name
    monkeypatch.undo()
    monkeypatch.setattr(cv2, "__version__", "0.0.0")
    other_opencv = CacheConfig().folder_name
    assert len({before, bumped, other_opencv}) == 3


def test_the_cache_folder_changes_with_the_mtcnn_calibration(monkeypatch):
    from ml_core.media import face_calibration

    before = CacheConfig().folder_name
    refit = {**face_calibration.mtcnn_to_hog_mapping(), "dy": 0.5}
    monkeypatch.setattr(face_calibration, "mtcnn_to_hog_mapping", lambda: refit)
    assert CacheConfig().folder_name != before


def test_the_same_settings_give_the_same_folder():
    assert CacheConfig(frames=10).folder_name == CacheConfig(frames=10).folder_name
    assert CacheConfig(frames=10).folder_name.startswith("f10-uniform-hog+mtcnn-cauto-m0.00-s112-")
