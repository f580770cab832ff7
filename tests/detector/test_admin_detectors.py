"""Detector models in the admin: checkpoint upload validation, activation, use and agreement figures."""

import pytest
import torch
from django.contrib.auth.models import Group
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from detector.models import DetectorModel, Result, Submission, User
from ml_core.model.checkpoints import file_sha256
from tests.helpers.checkpoints import make_reference_state_dict_file, make_tiny_checkpoint

pytestmark = pytest.mark.django_db

ADD = reverse("admin:detector_detectormodel_add")
CHANGELIST = reverse("admin:detector_detectormodel_changelist")


@pytest.fixture
def admin_user(client):
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return user


def upload(client, path, *, name="", activate=False, filename=None):
    with open(path, "rb") as f:
        data = {
            "checkpoint_file": SimpleUploadedFile(filename or path.name, f.read()),
            "name": name,
            "notes": "from a test",
        }
    if activate:
        data["activate"] = "on"
    return client.post(ADD, data)


def form_errors(response):
    return " ".join(str(e) for e in response.context["adminform"].form.errors.values())


def stored_checkpoints():
    if not default_storage.exists("detectors"):
        return []
    return default_storage.listdir("detectors")[1]


def test_uploading_a_good_checkpoint_registers_it_with_hash_config_and_metrics(client, admin_user, tmp_path):
    path = make_tiny_checkpoint(tmp_path / "tiny.pt", sequence_length=10, metrics={"val_auc": 0.77})
    response = upload(client, path, name="tiny v1")
    assert response.status_code == 302, form_errors(response)
    model = DetectorModel.objects.get()
    assert model.name == "tiny v1"
    assert model.sha256 == file_sha256(path)
    assert model.checkpoint.name == f"detectors/{model.sha256}.pt"
    assert default_storage.exists(model.checkpoint.name)
    assert model.sequence_length == 10
    assert model.config["backbone"] == "tiny"
    assert model.metrics["val_auc"] == 0.77
    assert model.size_bytes == path.stat().st_size
    assert model.notes == "from a test"
    assert not model.is_active


def test_an_empty_name_takes_the_name_from_the_checkpoint(client, admin_user, tmp_path):
    response = upload(client, make_tiny_checkpoint(tmp_path / "tiny.pt"), filename="my-model.pt")
    assert response.status_code == 302, form_errors(response)
    assert DetectorModel.objects.get().name


def test_an_html_page_named_pt_is_refused_with_the_loaders_message_and_nothing_is_saved(
    client, admin_user, tmp_path
):
    page = tmp_path / "model_87_acc_20_frames_final_data.pt"
    page.write_text(
        "<!DOCTYPE html><html><head><title>Google Drive</title></head><body>Sign in</body></html>"
    )
    response = upload(client, page)
    assert response.status_code == 200
    assert "HTML page" in form_errors(response)
    assert DetectorModel.objects.count() == 0
    assert stored_checkpoints() == []


def test_a_checkpoint_with_the_wrong_shapes_is_refused(client, admin_user, tmp_path):
    path = make_tiny_checkpoint(tmp_path / "tiny.pt")
    checkpoint = torch.load(path, weights_only=True)
    weight = checkpoint["model"]["linear1.weight"]
    checkpoint["model"]["linear1.weight"] = torch.zeros(weight.shape[0], weight.shape[1] + 3)
    torch.save(checkpoint, path)
    response = upload(client, path)
    assert response.status_code == 200
    assert "wrong shape" in form_errors(response)
    assert "linear1.weight" in form_errors(response)
    assert DetectorModel.objects.count() == 0
    assert stored_checkpoints() == []


def test_uploading_an_already_registered_checkpoint_is_refused(client, admin_user, tmp_path):
    path = make_tiny_checkpoint(tmp_path / "tiny.pt")
    assert upload(client, path, name="first").status_code == 302
    response = upload(client, path, name="second")
    assert response.status_code == 200
    assert "already registered" in form_errors(response)
    assert list(DetectorModel.objects.values_list("name", flat=True)) == ["first"]


def test_the_activate_box_on_upload_makes_it_the_only_active_model(client, admin_user, tmp_path):
    assert (
        upload(client, make_tiny_checkpoint(tmp_path / "a.pt", seed=1), name="a", activate=True).status_code
        == 302
    )
    assert (
        upload(client, make_tiny_checkpoint(tmp_path / "b.pt", seed=2), name="b", activate=True).status_code
        == 302
    )
    assert DetectorModel.active().name == "b"
    assert DetectorModel.objects.filter(is_active=True).count() == 1


def test_the_activate_action_switches_the_active_model(client, admin_user, tmp_path):
    upload(client, make_tiny_checkpoint(tmp_path / "a.pt", seed=1), name="a", activate=True)
    upload(client, make_tiny_checkpoint(tmp_path / "b.pt", seed=2), name="b")
    b = DetectorModel.objects.get(name="b")
    response = client.post(CHANGELIST, {"action": "activate_selected", "_selected_action": [b.pk]})
    assert response.status_code == 302
    assert DetectorModel.active() == b
    # More than one selected: refused, nothing changes.
    both = list(DetectorModel.objects.values_list("pk", flat=True))
    client.post(CHANGELIST, {"action": "activate_selected", "_selected_action": both})
    assert DetectorModel.active() == b


def test_activating_starts_submissions_that_were_waiting_for_a_model(client, admin_user, tmp_path):
    upload(client, make_tiny_checkpoint(tmp_path / "a.pt"), name="a")
    waiting = Submission.objects.create(
        owner=admin_user,
        status="queued",
        stage=Submission.Stage.WAITING_MODEL,
        video="submissions/x/video.mp4",
    )
    client.post(
        CHANGELIST, {"action": "activate_selected", "_selected_action": [DetectorModel.objects.get().pk]}
    )
    waiting.refresh_from_db()
    assert waiting.stage == Submission.Stage.WAITING


def make_model(name, sha):
    return DetectorModel.objects.create(name=name, sha256=sha * 64, checkpoint=f"detectors/{sha * 64}.pt")


def judge(owner, model, verdict, decision=""):
    submission = Submission.objects.create(owner=owner, status="done", review_decision=decision)
    result = Result.objects.create(
        submission=submission,
        verdict=verdict,
        fake_probability=0.5,
        detector=model,
        model_name=model.name,
        model_sha256=model.sha256,
    )
    Submission.objects.filter(pk=submission.pk).update(current_result=result)
    return submission


def test_the_list_shows_submissions_judged_and_agreement_with_reviewers(client, admin_user):
    model_a, model_b = make_model("model-a", "a"), make_model("model-b", "b")
    judge(admin_user, model_a, "FAKE", "confirmed_fake")  # agrees
    judge(admin_user, model_a, "REAL", "confirmed_real")  # agrees
    judge(admin_user, model_a, "REAL", "confirmed_fake")  # disagrees
    judge(admin_user, model_a, "UNCERTAIN", "confirmed_fake")  # not right either
    judge(admin_user, model_a, "FAKE", "inconclusive")  # no ground truth: left out
    judge(admin_user, model_a, "FAKE")  # not reviewed
    judge(admin_user, model_b, "REAL")
    response = client.get(CHANGELIST)
    rows = {m.name: m for m in response.context["cl"].result_list}
    assert (rows["model-a"].judged_count, rows["model-a"].reviewed_count, rows["model-a"].agreed_count) == (
        6,
        4,
        2,
    )
    assert (rows["model-b"].judged_count, rows["model-b"].reviewed_count) == (1, 0)
    html = response.content.decode()
    assert "2/4 (50%)" in html
    assert "no reviews yet" in html


def test_the_model_list_query_count_does_not_grow_with_models(client, admin_user):
    def count():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(CHANGELIST).status_code == 200
        return len(queries)

    judge(admin_user, make_model("m0", "0"), "FAKE", "confirmed_fake")
    few = count()
    for i in range(1, 10):
        judge(admin_user, make_model(f"m{i}", str(i)), "REAL", "confirmed_fake")
    assert count() == few


def test_the_change_page_shows_the_recorded_checkpoint_and_keeps_it_read_only(client, admin_user, tmp_path):
    upload(client, make_tiny_checkpoint(tmp_path / "a.pt"), name="a")
    model = DetectorModel.objects.get()
    url = reverse("admin:detector_detectormodel_change", args=[model.pk])
    html = client.get(url).content.decode()
    assert model.sha256 in html
    assert "val_auc" in html
    assert 'name="sha256"' not in html
    response = client.post(url, {"name": "renamed", "notes": "n", "sha256": "f" * 64, "is_active": "on"})
    assert response.status_code == 302
    model.refresh_from_db()
    assert (model.name, model.sha256 != "f" * 64, model.is_active) == ("renamed", True, False)


def test_the_change_page_sums_up_the_test_scores_instead_of_listing_them(client, admin_user, tmp_path):
    upload(client, make_tiny_checkpoint(tmp_path / "a.pt"), name="a")
    model = DetectorModel.objects.get()
    record = {"reals": [0.1234, 0.2], "fakes": [0.9], "count": 3, "auc": 0.75, "threshold": 0.5}
    model.metrics = {**model.metrics, "test_scores": record}
    model.save()
    html = client.get(reverse("admin:detector_detectormodel_change", args=[model.pk])).content.decode()
    assert "2 real and 1 fake test videos, AUC 0.750, threshold 0.500" in html
    assert "0.1234" not in html


def test_reviewers_can_see_models_but_not_upload_or_activate(client, tmp_path):
    model = make_model("m", "a")
    reviewer = User.objects.create_user("rita", "r@example.com", "pw", is_staff=True)
    reviewer.groups.add(Group.objects.get(name="reviewer"))
    client.force_login(reviewer)
    assert client.get(CHANGELIST).status_code == 200
    assert client.get(ADD).status_code == 403
    client.post(CHANGELIST, {"action": "activate_selected", "_selected_action": [model.pk]})
    model.refresh_from_db()
    assert not model.is_active


@pytest.mark.slow
def test_a_full_size_reference_checkpoint_uploads_and_takes_its_frame_count_from_the_name(
    client, admin_user, tmp_path
):
    path = make_reference_state_dict_file(tmp_path, frames=40, accuracy=89)
    response = upload(client, path, activate=True)
    assert response.status_code == 302, form_errors(response)
    model = DetectorModel.objects.get()
    assert model.sha256 == file_sha256(path)
    assert model.sequence_length == 40
    assert model.config["backbone"] == "resnext50_32x4d"
    assert model.is_active
    assert default_storage.size(model.checkpoint.name) == path.stat().st_size
