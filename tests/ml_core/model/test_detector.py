import pytest
import torch

from ml_core.model.detector import DeepfakeDetector, DetectorConfig


def tiny(**overrides):
    torch.manual_seed(0)
    return DeepfakeDetector(DetectorConfig.tiny(**overrides)).eval()


def test_it_builds_the_reference_key_layout():
    with torch.device("meta"):  # no weights allocated: the layout is all we check
        model = DeepfakeDetector(DetectorConfig.reference(20))
    state = model.state_dict()
    assert len(state) == 322
    assert state["model.0.weight"].shape == (64, 3, 7, 7)
    assert state["model.4.0.conv2.weight"].shape == (128, 4, 3, 3)
    assert "model.7.2.bn3.running_var" in state
    assert state["lstm.weight_ih_l0"].shape == state["lstm.weight_hh_l0"].shape == (8192, 2048)
    assert not any(k.startswith("lstm.bias") for k in state)
    assert state["linear1.weight"].shape == (2, 2048) and state["linear1.bias"].shape == (2,)
    assert sum(p.numel() for p in model.parameters()) == 56_538_434


def test_the_tiny_backbone_has_the_same_submodules_and_eight_stages():
    model = tiny()
    assert len(model.model) == 8
    assert {name for name, _ in model.named_children()} >= {"model", "lstm", "linear1"}
    x = torch.rand(2, 3, 3, 112, 112)  # (B, T, C, H, W)
    video_logits, frame_logits = model(x)
    assert video_logits.shape == (2, 2) and frame_logits.shape == (2, 3, 2)
    assert model.model[7](model.model[:7](x[0])).shape[1] == model.config.feature_dim


def test_reference_mode_scores_each_frame_from_a_zero_state():
    model = tiny(temporal="reference", lstm_bias=False)
    x = torch.rand(1, 4, 3, 64, 64)
    changed = x.clone()
    changed[0, 0] = torch.rand(3, 64, 64)  # only the first frame differs
    with torch.no_grad():
        _, frames = model(x)
        _, frames_changed = model(changed)
        _, alone = model(x[:, 2:3])  # frame 2 on its own
    assert not torch.allclose(frames[0, 0], frames_changed[0, 0])
    torch.testing.assert_close(frames[0, 1:], frames_changed[0, 1:])
    torch.testing.assert_close(frames[0, 2], alone[0, 0])


def test_reference_mode_keeps_videos_in_one_batch_independent():
    model = tiny(temporal="reference")
    a, b = torch.rand(1, 3, 3, 64, 64), torch.rand(1, 3, 3, 64, 64)
    with torch.no_grad():
        both, _ = model(torch.cat([a, b]))
        alone_a, _ = model(a)
        alone_b, _ = model(b)
    torch.testing.assert_close(both, torch.cat([alone_a, alone_b]))


def test_sequence_mode_carries_state_from_earlier_frames():
    model = tiny(temporal="sequence")
    x = torch.rand(1, 4, 3, 64, 64)
    changed = x.clone()
    changed[0, 0] = torch.rand(3, 64, 64)
    with torch.no_grad():
        _, frames = model(x)
        _, frames_changed = model(changed)
    # A later frame's score depends on what came before it.
    assert not torch.allclose(frames[0, 3], frames_changed[0, 3])


@pytest.mark.parametrize("temporal", ["reference", "sequence"])
def test_mean_aggregation_is_the_mean_of_frame_scores_and_last_is_the_last_frame(temporal):
    x = torch.rand(1, 5, 3, 64, 64)
    with torch.no_grad():
        mean_video, frames = tiny(temporal=temporal, aggregation="mean")(x)
        last_video, _ = tiny(temporal=temporal, aggregation="last")(x)
    # linear1 is affine, so the logit of the mean output is the mean of the frame logits.
    torch.testing.assert_close(mean_video, frames.mean(dim=1))
    torch.testing.assert_close(last_video, frames[:, -1])


def test_config_round_trips_through_a_plain_dict():
    config = DetectorConfig.native(40, uncertain_band=0.05, margin=0.2)
    data = config.to_dict()
    assert isinstance(data["mean"], list) and data["class_names"] == ["FAKE", "REAL"]
    assert DetectorConfig.from_dict(data) == config


@pytest.mark.parametrize(
    "bad",
    [
        {"temporal": "bidirectional"},
        {"aggregation": "max"},
        {"class_names": ("REAL", "FAKE")},  # FAKE must sit at fake_index
        {"backbone": "resnext50_32x4d", "feature_dim": 512},
        {"uncertain_band": 0.5},
    ],
)
def test_it_rejects_an_inconsistent_config(bad):
    with pytest.raises(ValueError):
        DetectorConfig(**bad)


def test_it_rejects_unknown_config_fields():
    with pytest.raises(ValueError, match="frobnicate"):
        DetectorConfig.from_dict({**DetectorConfig().to_dict(), "frobnicate": 1})


@pytest.mark.parametrize(
    "overrides",
    [{}, {"lstm_bias": True}, {"bidirectional": True}, {"num_layers": 2, "lstm_bias": True}],
)
def test_reference_mode_equals_running_the_lstm_one_step_from_zero(overrides):
    model = tiny(temporal="reference", **overrides)
    feats = torch.randn(2, 5, model.config.feature_dim)
    with torch.no_grad():
        _, frame_logits = model.head(feats)
        # What the reference app's batch_first=False call does for one video: seq len 1, batch T.
        expected = [model.linear1(model.lstm(video.unsqueeze(0))[0][0]) for video in feats]
    torch.testing.assert_close(frame_logits, torch.stack(expected))
