import json

import cv2
import numpy as np
import pytest
import torch

from ml_core.errors import NoFaceFound
from ml_core.inference.explain import fake_cams
from ml_core.inference.predictor import Prediction, Predictor, verdict
from ml_core.media.extraction import ExtractConfig, Extraction, Face, Identity, SampledFrame, VideoInfo
from tests.helpers.checkpoints import make_tiny_checkpoint
from tests.helpers.videos import face_patch, make_face_video


def crop(seed, size=112):
    """The astronaut's face, shifted and tinted per seed so crops differ."""
    rng = np.random.default_rng(seed)
    image = cv2.resize(face_patch(), (size, size)).astype(np.int16)
    image += rng.integers(-40, 40, size=3, dtype=np.int16)
    return np.clip(np.roll(image, int(rng.integers(-10, 10)), axis=1), 0, 255).astype(np.uint8)


def make_extraction(faces_per_identity, frames=8, path="clip.mp4"):
    """An Extraction built from the dataclasses. faces_per_identity: {identity: [frame numbers]}."""
    info = VideoInfo(path, frames / 10, 10.0, frames, 320, 240, 0, "mpeg4", "mp4", False)
    sampled = []
    for i in range(frames):
        faces = [
            Face((10, 130, 130, 10), 1.0, identity, crop(100 * identity + i))
            for identity, present in faces_per_identity.items()
            if i in present
        ]
        sampled.append(SampledFrame(index=3 * i, timestamp=0.3 * i, faces=faces))
    identities = [Identity(k, len(v), 14400.0) for k, v in faces_per_identity.items()]
    return Extraction(
        video=info,
        config=ExtractConfig(frames=max(frames, 10)),
        frames=sampled,
        identities=identities,
        main_identity=identities[0].id,
        timings={"total": 0.1},
    )


@pytest.fixture
def tiny_path(tmp_path):
    return make_tiny_checkpoint(tmp_path / "tiny.pt")


def test_it_predicts_a_verdict_with_per_frame_probabilities(tiny_path):
    predictor = Predictor(tiny_path)
    assert predictor.device.type == "cpu" and not predictor.amp
    extraction = make_extraction({0: [0, 1, 2, 4, 5, 7]})
    prediction = predictor.predict(extraction)
    assert prediction.label in ("REAL", "FAKE", "UNCERTAIN")
    assert prediction.frame_indices == [0, 3, 6, 12, 15, 21]
    assert prediction.timestamps == pytest.approx([0.0, 0.3, 0.6, 1.2, 1.5, 2.1])
    assert len(prediction.frame_probabilities) == 6
    assert all(0.0 <= p <= 1.0 for p in prediction.frame_probabilities)
    assert len(set(prediction.frame_probabilities)) > 1  # different crops, different scores
    assert prediction.model_sha256 == predictor.model_sha256 and len(prediction.model_sha256) == 64
    assert prediction.model_name == "tiny" and prediction.device == "cpu"
    assert prediction.overlays == {}
    assert {"preprocess", "forward", "total"} <= set(prediction.timings)
    info = json.loads(json.dumps(predictor.info()))
    assert info["sha256"] == prediction.model_sha256 and info["device"] == "cpu" and info["amp"] is None


@pytest.mark.parametrize("label", ["FAKE", "REAL"])
def test_a_confident_model_gives_a_confident_verdict(tmp_path, label):
    predictor = Predictor(make_tiny_checkpoint(tmp_path / "c.pt", verdict=label))
    prediction = predictor.predict(make_extraction({0: range(8)}))
    assert prediction.label == label
    assert (prediction.fake_probability > 0.99) == (label == "FAKE")


def test_scores_near_the_threshold_are_uncertain(tmp_path):
    # Random tiny weights score every crop close to 0.5.
    predictor = Predictor(make_tiny_checkpoint(tmp_path / "t.pt"), uncertain_band=0.3)
    prediction = predictor.predict(make_extraction({0: range(8)}))
    assert abs(prediction.fake_probability - 0.5) < 0.3
    assert prediction.label == "UNCERTAIN" and prediction.uncertain_band == 0.3


def test_the_uncertain_band_comes_from_the_checkpoint_config(tmp_path):
    path = make_tiny_checkpoint(tmp_path / "t.pt", uncertain_band=0.0, threshold=0.4)
    predictor = Predictor(path)
    assert predictor.config.uncertain_band == 0.0 and predictor.config.threshold == 0.4
    assert predictor.label_for(0.41) == "FAKE" and predictor.label_for(0.39) == "REAL"


def test_verdict_bands():
    assert verdict(0.55, 0.5, 0.1) == "UNCERTAIN"
    assert verdict(0.6, 0.5, 0.1) == "FAKE"
    assert verdict(0.2, 0.5, 0.1) == "REAL"
    assert verdict(0.5, 0.5, 0.0) == "FAKE"


@pytest.mark.parametrize("temporal", ["reference", "sequence"])
def test_batching_several_videos_gives_the_same_results_as_one_at_a_time(tmp_path, temporal):
    predictor = Predictor(make_tiny_checkpoint(tmp_path / "t.pt", temporal=temporal))
    extractions = [
        make_extraction({0: range(8)}),
        make_extraction({0: [1, 2, 3], 1: [0, 1, 2, 3, 4]}, frames=5),
        make_extraction({4: range(10)}, frames=10),
    ]
    batched = predictor.predict_many(extractions)
    assert batched[0].timings["videos_in_batch"] == 3
    for extraction, together in zip(extractions, batched):
        alone = predictor.predict(extraction)
        assert together.fake_probability == pytest.approx(alone.fake_probability, abs=1e-5)
        assert together.frame_probabilities == pytest.approx(alone.frame_probabilities, abs=1e-5)
        assert [i.id for i in together.identities] == [i.id for i in alone.identities]


def test_the_video_is_fake_if_any_identity_is_fake(tiny_path, monkeypatch):
    predictor = Predictor(tiny_path, uncertain_band=0.1)
    extraction = make_extraction({0: range(8), 1: range(6), 2: [3]})
    scores = {8: 0.1, 6: 0.9, 1: 0.99}  # by track length: main REAL, identity 1 FAKE, identity 2 seen once

    def fake_classify(x, lengths):
        return [(scores[n], np.full(n, scores[n], np.float32)) for n in lengths]

    monkeypatch.setattr(predictor, "classify_crops", fake_classify)
    prediction = predictor.predict(extraction)
    assert [(i.id, i.label, i.counted) for i in prediction.identities] == [
        (0, "REAL", True),
        (1, "FAKE", True),
        (2, "FAKE", False),  # one frame is too little to decide the video
    ]
    assert prediction.label == "FAKE" and prediction.decisive_identity == 1
    assert prediction.fake_probability == 0.9
    assert prediction.frame_probabilities == pytest.approx([0.1] * 8)  # the main identity's frames
    assert prediction.main_identity == 0


def test_last_frame_aggregation_can_be_chosen(tmp_path):
    path = make_tiny_checkpoint(tmp_path / "t.pt", temporal="reference", lstm_bias=False)
    extraction = make_extraction({0: range(8)})
    mean = Predictor(path).predict(extraction)
    last = Predictor(path, aggregation="last").predict(extraction)
    assert last.fake_probability == pytest.approx(last.frame_probabilities[-1], abs=1e-6)
    assert mean.fake_probability != pytest.approx(last.fake_probability, abs=1e-6)


def test_it_refuses_an_extraction_without_crops_for_the_main_identity(tiny_path):
    with pytest.raises(NoFaceFound):
        Predictor(tiny_path).predict(make_extraction({0: []}))


def test_explain_returns_an_overlay_per_crop(tmp_path):
    predictor = Predictor(make_tiny_checkpoint(tmp_path / "t.pt", temporal="reference"))
    prediction = predictor.predict(make_extraction({0: range(4), 1: [1, 2, 3]}), explain=True)
    assert set(prediction.overlays) == {0, 1}
    assert len(prediction.overlays[0]) == 4 and len(prediction.overlays[1]) == 3
    image = prediction.overlays[0][0]
    assert image.shape == (112, 112, 3) and image.dtype == np.uint8
    assert "explain" in prediction.timings


def test_explanations_reuse_the_classification_pass_and_match_a_separate_grad_cam(tmp_path):
    predictor = Predictor(make_tiny_checkpoint(tmp_path / "t.pt", temporal="sequence"))
    x = predictor.preprocess([crop(i) for i in range(5)])
    results, cams, _ = predictor.explain_crops(x, [3, 2])
    for (video_p, frame_p), (plain_video_p, plain_frame_p) in zip(
        results, predictor.classify_crops(x, [3, 2])
    ):
        assert video_p == pytest.approx(plain_video_p)
        np.testing.assert_allclose(frame_p, plain_frame_p, rtol=1e-6)
    np.testing.assert_allclose(cams, fake_cams(predictor.model, x, [3, 2]), atol=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_it_says_when_cuda_is_requested_but_missing(tiny_path):
    with pytest.raises(ValueError, match="CUDA is not available"):
        Predictor(tiny_path, device="cuda")


def test_the_prediction_serialises_to_json_without_pixels(tmp_path):
    predictor = Predictor(make_tiny_checkpoint(tmp_path / "t.pt"))
    prediction = predictor.predict(make_extraction({0: range(4), 1: range(4)}), explain=True)
    data = json.loads(json.dumps(prediction.to_dict()))
    assert set(data) >= {f for f in Prediction.__dataclass_fields__ if f != "overlays"}
    assert "overlays" not in data and data["explained"] is True
    assert data["identities"][1]["frame_indices"] == [0, 3, 6, 9]


def test_it_predicts_a_video_file_end_to_end(tmp_path):
    from ml_core.inference.analysis import analyse

    video = make_face_video(tmp_path / "face.mp4", count=24)
    predictor = Predictor(make_tiny_checkpoint(tmp_path / "t.pt", sequence_length=10, margin=0.1))
    analysis = analyse(video, lambda: predictor)
    extraction, prediction = analysis.extraction, analysis.prediction
    assert extraction.config.frames == 10 and extraction.config.margin == 0.1
    assert extraction.config.crop_size == predictor.config.image_size
    assert prediction.frame_indices == [frame.index for frame, _ in extraction.track()]
    assert "extract" in prediction.timings


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("temporal", ["reference", "sequence"])
def test_cuda_and_cpu_give_the_same_probabilities(tmp_path, temporal):
    path = make_tiny_checkpoint(tmp_path / "t.pt", temporal=temporal)
    extraction = make_extraction({0: range(8), 1: range(5)})
    cpu = Predictor(path, device="cpu").predict(extraction)
    gpu = Predictor(path, device="cuda").predict(extraction, explain=True)
    assert gpu.device.startswith("cuda")
    assert gpu.fake_probability == pytest.approx(cpu.fake_probability, abs=2e-2)
    assert gpu.frame_probabilities == pytest.approx(cpu.frame_probabilities, abs=2e-2)
    assert len(gpu.overlays[0]) == 8


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_mixed_precision_matches_cpu_on_the_full_reference_model(tmp_path):
    from ml_core.model.checkpoints import save_checkpoint
    from ml_core.model.detector import DeepfakeDetector, DetectorConfig

    torch.manual_seed(0)
    config = DetectorConfig.reference(20)
    path = save_checkpoint(tmp_path / "ref.pt", DeepfakeDetector(config), config)
    extraction = make_extraction({0: range(8)})
    cpu = Predictor(path, device="cpu").predict(extraction)
    gpu = Predictor(path, device="cuda").predict(extraction)
    assert gpu.frame_probabilities == pytest.approx(cpu.frame_probabilities, abs=2e-2)


def test_it_can_limit_torch_threads(tiny_path):
    before = torch.get_num_threads()
    try:
        Predictor(tiny_path, threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
