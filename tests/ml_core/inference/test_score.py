import numpy as np
import pytest

from ml_core.inference.explain import heat_in_face
from ml_core.inference.predictor import Predictor, verdict
from ml_core.inference.score import (
    SCORE_DEFINITION,
    bootstrap_interval,
    person_score,
    score_definition,
    straddles,
)
from tests.helpers.checkpoints import make_tiny_checkpoint
from tests.ml_core.inference.test_predictor import make_extraction


@pytest.mark.parametrize("temporal", ["reference", "sequence"])
def test_the_stated_definition_is_what_the_model_computes(tmp_path, temporal):
    # "the average of their face scores taken on the log-odds scale": checked against the network.
    predictor = Predictor(make_tiny_checkpoint(tmp_path / "t.pt", temporal=temporal))
    prediction = predictor.predict(make_extraction({0: range(8)}))
    person = prediction.identities[0]
    assert person.fake_probability == pytest.approx(person_score(person.frame_probabilities), abs=1e-5)
    assert "log-odds" in SCORE_DEFINITION and score_definition("mean") == SCORE_DEFINITION
    assert "last analysed face" in score_definition("last")


def test_the_log_odds_average_is_not_the_plain_average():
    assert person_score([0.5, 0.99]) == pytest.approx(0.9087, abs=1e-4)  # plain mean: 0.745
    assert person_score([0.3] * 5) == pytest.approx(0.3)


def test_the_interval_is_reproducible_and_holds_the_score():
    scores = [0.42, 0.58, 0.63, 0.75, 0.2, 0.9]
    first, second = bootstrap_interval([scores]), bootstrap_interval([scores])
    assert first == second
    low, high = first
    assert low < person_score(scores) < high


def test_faces_that_disagree_give_a_wider_interval_than_faces_that_agree():
    agree = bootstrap_interval([[0.6, 0.61, 0.62, 0.6, 0.59, 0.61]])
    disagree = bootstrap_interval([[0.1, 0.95, 0.2, 0.9, 0.3, 0.85]])
    assert agree[1] - agree[0] < 0.03
    assert disagree[1] - disagree[0] > 0.3


def test_one_face_gives_no_interval():
    assert bootstrap_interval([[0.7]]) is None
    assert bootstrap_interval([]) is None


def test_the_interval_of_several_people_follows_the_most_fake_one():
    low, high = bootstrap_interval([[0.1, 0.12, 0.11], [0.8, 0.82, 0.81]])
    assert 0.79 < low < high < 0.83


def test_an_interval_straddles_a_threshold_only_with_scores_on_both_sides():
    assert straddles((0.6, 0.8), 0.7)
    assert straddles((0.6, 0.7), 0.7)  # 0.7 itself would be FAKE
    assert not straddles((0.7, 0.8), 0.7)
    assert not straddles((0.5, 0.69), 0.7)
    assert not straddles(None, 0.7)


def test_a_score_outside_the_band_is_uncertain_when_its_range_crosses_the_threshold():
    assert verdict(0.85, 0.7, 0.1) == "FAKE"
    assert verdict(0.85, 0.7, 0.1, interval=(0.62, 0.93)) == "UNCERTAIN"
    assert verdict(0.85, 0.7, 0.1, interval=(0.81, 0.9)) == "FAKE"
    assert verdict(0.3, 0.7, 0.1, interval=(0.2, 0.45)) == "REAL"


def test_the_prediction_carries_the_interval_and_its_verdict_follows_it(tmp_path, monkeypatch):
    predictor = Predictor(make_tiny_checkpoint(tmp_path / "t.pt", threshold=0.7, uncertain_band=0.05))
    # Faces that disagree around a score well above the band: the range crosses the threshold.
    scores = np.array([0.2, 0.95, 0.3, 0.97, 0.35, 0.96, 0.9, 0.93], np.float32)

    def fake_classify(x, lengths):
        return [(person_score(scores[:n]), scores[:n]) for n in lengths]

    monkeypatch.setattr(predictor, "classify_crops", fake_classify)
    prediction = predictor.predict(make_extraction({0: range(8)}))
    assert prediction.fake_probability > 0.75  # 0.81, outside the band
    low, high = prediction.score_interval
    assert low < 0.7 <= high
    assert prediction.label == "UNCERTAIN" and prediction.identities[0].label == "UNCERTAIN"
    assert prediction.identities[0].interval == prediction.score_interval
    assert prediction.to_dict()["score_interval"] == [low, high]


def test_last_frame_aggregation_has_no_interval(tmp_path):
    path = make_tiny_checkpoint(tmp_path / "t.pt", temporal="reference")
    prediction = Predictor(path, aggregation="last").predict(make_extraction({0: range(8)}))
    assert prediction.score_interval is None


def test_heat_in_the_middle_of_the_crop_is_inside_the_face():
    cam = np.zeros((160, 160), np.float32)
    cam[60:100, 60:100] = 1.0
    assert heat_in_face(cam, margin=0.25) == pytest.approx(1.0)


def test_heat_in_the_corners_is_outside_the_face():
    cam = np.zeros((160, 160), np.float32)
    cam[:20, :20] = 1.0
    cam[140:, 140:] = 1.0
    assert heat_in_face(cam, margin=0.25) == 0.0
    cam[70:90, 70:90] = 1.0  # some on the face too: 400 of 1200 units
    assert heat_in_face(cam, margin=0.25) == pytest.approx(1 / 3)


def test_a_map_without_heat_raises_no_warning():
    assert heat_in_face(np.zeros((8, 8)), margin=0.25) == 1.0


def test_explained_predictions_record_where_the_heat_lies(tmp_path):
    predictor = Predictor(make_tiny_checkpoint(tmp_path / "t.pt"))
    prediction = predictor.predict(make_extraction({0: range(5)}), explain=True)
    heat = prediction.identities[0].heat_in_face
    assert len(heat) == 5 and all(0.0 <= h <= 1.0 for h in heat)
    assert predictor.predict(make_extraction({0: range(5)})).identities[0].heat_in_face is None
