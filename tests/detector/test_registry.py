"""The detector model registry: install, validate, deduplicate, activate."""

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from detector.models import DetectorModel
from detector.registry import activate_detector, install_checkpoint
from ml_core.errors import CheckpointError
from tests.helpers.checkpoints import make_tiny_checkpoint

pytestmark = pytest.mark.django_db


def test_it_stores_a_checkpoint_under_its_sha256_with_config_and_metrics(tmp_path):
    path = make_tiny_checkpoint(tmp_path / "mine.pt", sequence_length=40, metrics={"val_auc": 0.91})
    detector = install_checkpoint(path, name="Tiny test model")
    assert detector.checkpoint.name == f"detectors/{detector.sha256}.pt"
    assert default_storage.exists(detector.checkpoint.name)
    assert detector.size_bytes == path.stat().st_size
    assert detector.sequence_length == 40
    assert detector.config["backbone"] == "tiny"
    assert detector.metrics["val_auc"] == 0.91
    assert detector.name == "Tiny test model" and not detector.is_active


def test_installing_the_same_file_twice_returns_the_existing_model(tmp_path):
    path = make_tiny_checkpoint(tmp_path / "mine.pt")
    first = install_checkpoint(path)
    again = install_checkpoint(path, activate=True)
    assert again.pk == first.pk and DetectorModel.objects.count() == 1
    assert DetectorModel.active() == first


def test_it_refuses_a_file_that_is_not_a_checkpoint_and_stores_nothing(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_text("<html><body>Download page</body></html>")
    with pytest.raises(CheckpointError, match="HTML"):
        install_checkpoint(bad)
    assert not DetectorModel.objects.exists()
    assert not default_storage.exists("detectors") or default_storage.listdir("detectors") == ([], [])


def test_it_accepts_an_uploaded_file_object(tmp_path):
    data = make_tiny_checkpoint(tmp_path / "mine.pt").read_bytes()
    detector = install_checkpoint(SimpleUploadedFile("../../evil name.pt", data))
    assert detector.checkpoint.name == f"detectors/{detector.sha256}.pt"


def test_activating_a_model_deactivates_the_others(tmp_path):
    first = install_checkpoint(make_tiny_checkpoint(tmp_path / "a.pt", seed=0), activate=True)
    second = install_checkpoint(make_tiny_checkpoint(tmp_path / "b.pt", seed=1))
    activate_detector(second)
    assert list(DetectorModel.objects.filter(is_active=True)) == [second]
    activate_detector(first)
    assert DetectorModel.active() == first
