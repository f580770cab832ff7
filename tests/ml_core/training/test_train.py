import json
from collections import Counter

import numpy as np
import pytest
import torch

from detector.management.commands.train_detector import Command as TrainDetector
from ml_core.cli import train
from ml_core.cli.evaluate import main as evaluate_main
from ml_core.model.checkpoints import load_checkpoint
from ml_core.model.detector import DeepfakeDetector, DetectorConfig
from ml_core.training.clips import (
    ClipDataset,
    Sample,
    build_samples,
    class_weights,
    frame_positions,
    paired_batches,
)
from ml_core.training.datasets import VideoItem
from ml_core.training.engine import cosine_with_warmup
from ml_core.training.run import load_backbone_weights
from tests.helpers.videos import make_face_video

TINY = ["--backbone", "tiny", "--frames", "4", "--cache-frames", "10", "--batch-size", "4"]
QUIET = ["--cache-workers", "1", "--no-progress", "--val-fraction", "0.34"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    (root / "real").mkdir()
    (root / "fake").mkdir()
    for i in range(6):
        make_face_video(root / "real" / f"r{i}.mp4", count=10, seed=i, face_size=110 + 10 * i)
    for i in range(3):
        make_face_video(root / "fake" / f"f{i}.mp4", count=10, seed=10 + i, face_size=150, move=False)
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def history(run_dir):
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def test_a_two_epoch_tiny_run_saves_resumes_and_evaluates(dataset, cache_dir, tmp_path):
    run_dir = tmp_path / "run"
    common = ["--data", str(dataset), "--out", str(run_dir), "--cache-dir", str(cache_dir), "--fakes", "both"]
    # Through manage.py's command: the options pass through to ml_core.cli.train untouched.
    TrainDetector().run_from_argv(["manage.py", "train_detector", *common, *TINY, *QUIET, "--epochs", "2"])
    for name in ("best.pt", "last.pt", "config.json", "split.json", "history.jsonl", "train.log"):
        assert (run_dir / name).is_file(), name
    assert [line["epoch"] for line in history(run_dir)] == [1, 2]
    best = load_checkpoint(run_dir / "best.pt")
    assert best.kind == "native" and best.config.backbone == "tiny"
    assert best.config.threshold == pytest.approx(best.metrics["val_threshold"])
    assert 0.0 <= best.metrics["val_video_auc"] <= 1.0
    assert best.metrics["val"]["confusion_matrix"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["args"]["fakes"] == "both"
    assert config["detector"]["sequence_length"] == 4
    assert config["data"]["val_clips"] > 0

    # Another recipe cannot continue this run: refused before anything is rewritten.
    before = (run_dir / "config.json").read_bytes()
    with pytest.raises(SystemExit, match="--lr"):
        train.main([*common, *TINY, *QUIET, "--epochs", "3", "--resume", "--lr", "0.5"])
    assert (run_dir / "config.json").read_bytes() == before
    # Running longer is a resume.
    train.main([*common, *TINY, *QUIET, "--epochs", "3", "--resume", "--patience", "10"])
    assert [line["epoch"] for line in history(run_dir)] == [1, 2, 3]
    assert torch.load(run_dir / "last.pt", weights_only=True)["state"]["epoch"] == 3

    report = evaluate_main(
        [
            "--checkpoint",
            str(run_dir / "best.pt"),
            "--data",
            str(dataset),
            "--out",
            str(tmp_path / "report"),
            "--split",
            str(run_dir / "split.json"),
            "--subset",
            "val",
            "--fakes",
            "both",
            "--cache-dir",
            str(cache_dir),
            "--cache-frames",
            "10",
            "--cache-workers",
            "1",
            "--no-progress",
        ]
    )
    assert report["threshold"] == pytest.approx(best.config.threshold)
    assert report["scored"] == config["data"]["val_clips"]  # same clips as validation
    assert (tmp_path / "report" / "roc.png").is_file()


def test_the_same_seed_gives_the_same_model(dataset, cache_dir, tmp_path):
    weights = []
    for name in ("a", "b"):
        run_dir = tmp_path / name
        args = ["--data", str(dataset), "--out", str(run_dir), "--cache-dir", str(cache_dir)]
        train.main([*args, *TINY, *QUIET, "--epochs", "1", "--fakes", "self-blended", "--seed", "5"])
        weights.append(torch.load(run_dir / "last.pt", weights_only=True)["model"])
        assert json.loads((run_dir / "split.json").read_text())["seed"] == 5
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])


def test_self_blended_mode_shows_each_real_video_twice_and_no_dataset_fakes():
    real = VideoItem("real/a.mp4", "/a.mp4", "REAL")
    fake = VideoItem("fake/b.mp4", "/b.mp4", "FAKE", method="Deepfakes")
    samples = build_samples([real, fake], "self-blended")
    assert [(s.item.video_id, s.label) for s in samples] == [("real/a.mp4", "REAL"), ("real/a.mp4", "FAKE")]
    assert samples[1].method == "self-blended"
    assert [s.label for s in build_samples([real, fake], "both")] == ["REAL", "FAKE", "FAKE"]
    assert [s.label for s in build_samples([real, fake], "dataset")] == ["REAL", "FAKE"]


def test_clip_positions_are_contiguous_or_spread_and_pad_short_videos():
    rng = np.random.default_rng(0)
    window = frame_positions(20, 5, rng, "contiguous")
    assert np.array_equal(np.diff(window), np.ones(4))
    spread = frame_positions(20, 5, rng, "uniform")
    assert len(set(spread.tolist())) == 5 and np.all(np.diff(spread) > 0)
    assert frame_positions(20, 5, None, "contiguous").tolist() == [0, 5, 10, 14, 19]
    assert frame_positions(3, 5, None, "uniform").tolist() == [0, 0, 1, 1, 2]


def test_the_schedule_warms_up_then_decays_to_the_floor():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=1.0)
    scheduler = cosine_with_warmup(optimizer, warmup_steps=4, total_steps=20, min_ratio=0.1)
    rates = []
    for _ in range(20):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(a >= b for a, b in zip(rates[4:], rates[5:]))
    assert rates[-1] == pytest.approx(0.1, abs=0.02)


def test_class_weights_balance_the_classes():
    real = Sample(VideoItem("r.mp4", "/r.mp4", "REAL"))
    fake = Sample(VideoItem("f.mp4", "/f.mp4", "FAKE"))
    config = DetectorConfig.tiny()
    weights = class_weights([real, real, real, fake], config)
    assert weights[config.fake_index] == pytest.approx(2.0)
    assert weights[config.real_index] == pytest.approx(4 / 6)


def test_it_initialises_the_backbone_from_a_torchvision_weights_file(tmp_path):
    from torchvision.models import resnext50_32x4d

    torch.manual_seed(0)
    reference = resnext50_32x4d(weights=None).state_dict()
    path = tmp_path / "resnext50_32x4d-imagenet.pth"
    torch.save(reference, path)
    model = DeepfakeDetector(DetectorConfig.native(hidden_size=8))
    load_backbone_weights(model, path)
    assert torch.equal(model.model[0].weight, reference["conv1.weight"])
    assert torch.equal(model.model[7][2].bn3.running_var, reference["layer4.2.bn3.running_var"])
    torch.save({"conv1.weight": reference["conv1.weight"]}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="not a torchvision resnext50_32x4d"):
        load_backbone_weights(model, tmp_path / "partial.pth")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_it_trains_with_mixed_precision_on_cuda(dataset, cache_dir, tmp_path):
    run_dir = tmp_path / "cuda"
    args = ["--data", str(dataset), "--out", str(run_dir), "--cache-dir", str(cache_dir), "--device", "cuda"]
    train.main([*args, *TINY, *QUIET, "--epochs", "1", "--fakes", "self-blended", "--amp", "on"])
    best = load_checkpoint(run_dir / "best.pt")
    assert best.config.backbone == "tiny"
    assert all(t.device.type == "cpu" for t in best.model.state_dict().values())


def test_the_command_explains_a_bad_data_path(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        TrainDetector().run_from_argv(
            ["manage.py", "train_detector", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "run")]
        )
    assert exited.value.code == 1
    assert "does not exist" in capsys.readouterr().err


def test_paired_batches_keep_each_real_clip_with_its_self_blended_twin():
    items = [VideoItem(f"real/{i}.mp4", f"/{i}.mp4", "REAL") for i in range(5)]
    items.append(VideoItem("fake/x.mp4", "/x.mp4", "FAKE"))
    samples = build_samples(items, "both", repeats=2)
    assert len(samples) == 2 * 11
    batches = paired_batches(samples, 4, torch.Generator().manual_seed(0))
    assert sorted(i for batch in batches for i in batch) == list(range(len(samples)))
    assert all(len(batch) <= 4 for batch in batches)
    for batch in batches:
        for index in batch:
            if samples[index].self_blended:
                assert index - 1 in batch and samples[index - 1].item == samples[index].item


def test_a_real_clip_and_its_twin_share_frames_and_differ_only_by_the_blend(dataset, cache_dir, tmp_path):
    from ml_core.training.cache import CacheConfig, VideoCache
    from ml_core.training.datasets import read_folder

    cache = VideoCache(cache_dir, CacheConfig(frames=10))
    items = [item for item in read_folder(dataset).items if item.video_id == "real/r0.mp4"]
    cache.build(items, progress=False)
    samples = build_samples(items, "self-blended")
    clips = ClipDataset(samples, cache, DetectorConfig.tiny(), frames=4, train=True, seed=1)
    clips.set_epoch(3)
    (real, _), (fake, _) = clips.clip(0), clips.clip(1)
    changed = np.any(real != fake, axis=-1)
    assert changed.any()
    assert changed.mean() < 0.9  # the background around the face is untouched


def test_paired_batches_keep_a_dataset_fake_with_the_real_clip_it_was_made_from():
    reals = [VideoItem(f"real/{i}.mp4", f"/{i}.mp4", "REAL") for i in range(6)]
    fakes = [
        VideoItem(f"fake/{i}_{m}.mp4", "/f.mp4", "FAKE", method=m, original=f"real/{i}.mp4")
        for i in range(6)
        for m in ("Deepfakes", "FaceSwap")
    ]
    samples = build_samples(fakes + reals, "both")
    batches = paired_batches(samples, 8, torch.Generator().manual_seed(1))
    assert sorted(i for batch in batches for i in batch) == list(range(len(samples)))
    for batch in batches:
        assert len(batch) <= 8
        families = Counter(samples[i].item.original or samples[i].item.video_id for i in batch)
        # Each family (a real clip, its self-blended twin, its two fakes) is whole in its batch.
        assert all(count == 4 for count in families.values())


@pytest.mark.slow
def test_a_lite_run_validates_compressed_clips_then_a_sequence_head_is_fitted_and_compared(
    dataset, cache_dir, tmp_path
):
    from ml_core.model.efficientnet_lite import build_lite, load_imagenet
    from ml_core.training.sequence import SequenceHeadConfig, fit_for_run

    run_dir = tmp_path / "lite"
    lite = ["--backbone", "efficientnet_lite0", "--image-size", "64", "--frames", "3", "--cache-frames", "10"]
    train.main(
        ["--data", str(dataset), "--out", str(run_dir), "--cache-dir", str(cache_dir), "--fakes", "both"]
        + lite
        + QUIET
        + [
            "--batch-size",
            "4",
            "--epochs",
            "1",
            "--freeze-stages",
            "3",
            "--val-crf",
            "40",
            "--max-fpr",
            "0.5",
        ]
    )
    best = load_checkpoint(run_dir / "best.pt")
    assert best.config.backbone == "efficientnet_lite0" and best.config.channel_order == "RGB"
    assert best.provenance["init"] == "imagenet"
    assert history(run_dir)[0]["val_compressed_video_auc"] is not None
    assert best.metrics["val_threshold_rule"].startswith("false-FAKE rate <= 0.5")
    # The frozen stages are still ImageNet's, weights and batch-norm statistics alike.
    imagenet = build_lite("efficientnet_lite0")
    load_imagenet("efficientnet_lite0", imagenet)
    for name, tensor in imagenet[:3].state_dict().items():
        assert torch.equal(best.model.model.state_dict()[name], tensor), name

    report = fit_for_run(run_dir, SequenceHeadConfig(draws=1, epochs=2))
    sequence = load_checkpoint(run_dir / "sequence.pt")
    assert sequence.config.temporal == "sequence" and report["winner"] in ("sequence", "frame_mean")
    assert set(report["val_auc"]) == {"clean", "compressed"}
    assert 0 < sequence.config.threshold < 1
    # The head's record is its own; the frame model's figures are kept apart, under frame_model.
    assert sequence.metrics["val_threshold"] == sequence.config.threshold == report["sequence_threshold"]
    assert sequence.metrics["val_video_auc"] == report["val_auc"]["clean"]["sequence"]
    assert sequence.metrics["frame_model"]["val_threshold"] == best.config.threshold
    # Only the head was trained: the backbone is the frame model's, bit for bit.
    for name, tensor in best.model.model.state_dict().items():
        assert torch.equal(sequence.model.model.state_dict()[name], tensor), name

    result = evaluate_main(
        [
            "--data",
            str(dataset),
            "--checkpoint",
            str(run_dir / "sequence.pt"),
            "--subset",
            "all",
            "--out",
            str(tmp_path / "eval"),
        ]
        + ["--cache-dir", str(cache_dir), "--cache-frames", "10", "--recompress", "c40", "--no-progress"]
    )
    assert result["data"]["recompressed"]["crf"] == 40 and result["scored"] == 9
    assert len(list((cache_dir / "recompressed" / "c40").glob("*.mp4"))) == 9


def write_generated(root, rows):
    """A folder as ml_core.cli.make_fakes writes it: MANIFEST.tsv and the files it lists."""
    from ml_core.training.fakes.reader import COLUMNS

    lines = ["\t".join(COLUMNS)]
    for row in rows:
        (root / row["local_file"]).parent.mkdir(parents=True, exist_ok=True)
        (root / row["local_file"]).write_bytes(b"video")
        full = {column: "" for column in COLUMNS} | {"compression": "c23", "params": "{}"} | row
        lines.append("\t".join(str(full[column]) for column in COLUMNS))
    (root / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")
    return root


def test_generated_clips_join_training_only_and_never_bring_a_held_out_person(tmp_path):
    from ml_core.training.run import training_only
    from ml_core.training.splits import Split

    items = [
        VideoItem("real/ann.mp4", "ann.mp4", "REAL", identities=("ffpp:ann",)),
        VideoItem("real/bob.mp4", "bob.mp4", "REAL", identities=("ffpp:bob",)),
        VideoItem("real/cid.mp4", "cid.mp4", "REAL"),  # no named person: "clip:<id>" stands in
    ]
    split = Split({"real/ann.mp4": "train", "real/bob.mp4": "test", "real/cid.mp4": "val"}, 0, {}, True)
    people = json.dumps
    root = write_generated(
        tmp_path / "gen",
        [
            {
                "label": "REAL",
                "local_file": "real/c23/ann.mp4",
                "identities": people(["ffpp:ann"]),
                "split": "train",
            },
            {
                "label": "FAKE",
                "local_file": "mouth/c23/ann.mp4",
                "method": "GeneratedMouth",
                "identities": people(["ffpp:ann"]),
                "original": "real/c23/ann.mp4",
                "split": "train",
            },
            # Made with another split file: says train, but shows a test person here.
            {
                "label": "FAKE",
                "local_file": "swap/c23/ann_bob.mp4",
                "identities": people(["ffpp:ann", "ffpp:bob"]),
                "split": "train",
            },
            {
                "label": "FAKE",
                "local_file": "swap/c23/ann_cid.mp4",
                "identities": people(["ffpp:ann", "clip:real/cid.mp4"]),
                "split": "train",
            },
            {
                "label": "FAKE",
                "local_file": "mouth/c23/bob.mp4",
                "identities": people(["ffpp:bob"]),
                "split": "test",
            },
        ],
    )
    kept = training_only([root], items, split)
    assert sorted(item.video_id for item in kept) == [
        "generated/mouth/c23/ann.mp4",
        "generated/real/c23/ann.mp4",
    ]
    fake = next(item for item in kept if item.is_fake)
    assert fake.original == "generated/real/c23/ann.mp4" and fake.method == "GeneratedMouth"
    assert all(split.assignments[item.video_id] == "train" for item in kept)
    assert split.select(items, "test") == [items[1]]


def test_generated_clips_made_without_a_split_file_are_refused(tmp_path):
    from ml_core.errors import UsageError
    from ml_core.training.run import training_only
    from ml_core.training.splits import Split

    root = write_generated(
        tmp_path / "gen", [{"label": "REAL", "local_file": "real/c23/a.mp4", "identities": "[]"}]
    )
    # Library code raises UsageError (the command turns it into an exit with this message).
    with pytest.raises(UsageError, match="without a split file"):
        training_only([root], [], Split({}, 0, {}, True))


def test_validation_reports_clean_and_compressed_clips_at_the_threshold_the_checkpoint_ships_with(
    monkeypatch,
):
    from ml_core.training import run

    def scored(pairs):
        scores = [{"label": label, "p_fake": p} for label, p in pairs]
        return {"scores": scores, "video": {"auc": 0.0, "best_balanced_accuracy": 0.0}, "frame": {"auc": 0.0}}

    clean = [("REAL", 0.1), ("REAL", 0.2), ("FAKE", 0.6), ("FAKE", 0.9)]
    # Compressed: a real at 0.7 and a fake at 0.5; its own best threshold would sit between them.
    compressed = [("REAL", 0.1), ("REAL", 0.7), ("FAKE", 0.5), ("FAKE", 0.8)]
    reports = iter([scored(clean), scored(compressed)])
    monkeypatch.setattr(run, "evaluate", lambda *args, **kwargs: next(reports))
    report = run.validate(None, "clean", "compressed", "cpu", None, max_fpr=0.25)
    threshold = report["threshold"]
    # At most one in four reals (clean and compressed together) may reach it: the 0.7 one.
    assert 0.2 < threshold <= 0.7
    assert report["compressed"]["threshold"] == report["video"]["threshold"] == threshold
    predicted_fake = sum(p >= threshold for _, p in compressed)
    assert report["compressed"]["confusion_matrix"][0][1] + report["compressed"]["confusion_matrix"][1][
        1
    ] == (predicted_fake)
    assert report["threshold_rule"] == "false-FAKE rate <= 0.25 on validation reals (clean + compressed)"
    assert report["compressed"]["best_balanced_accuracy"] == 0.0  # evaluate's own figures are kept


def test_generated_clips_are_counted_apart_from_the_datasets_in_the_cache_summary(
    dataset, cache_dir, tmp_path
):
    from ml_core.training.cache import CacheConfig
    from ml_core.training.run import build_config, prepare_data
    from ml_core.training.splits import load_split

    run_dir = tmp_path / "run"
    base = ["--data", str(dataset), "--out", str(run_dir), "--cache-dir", str(cache_dir), *TINY, *QUIET]
    args = train.get_args_parser().parse_args(base)
    size = build_config(args).image_size  # the training runs' cache above, reused
    cache_config = CacheConfig(frames=args.cache_frames, detector=args.detector, margin=0.0, crop_size=size)
    *_, alone = prepare_data(args, cache_config, run_dir)
    person = sorted(load_split(run_dir / "split.json").ids("train"))[0]
    generated = write_generated(
        tmp_path / "gen",
        [
            {
                "label": "FAKE",
                "local_file": f"mouth/c23/{i}.mp4",
                "identities": json.dumps([f"clip:{person}"]),
            }
            | {"split": "train", "method": "GeneratedMouth"}
            for i in range(2)
        ],
    )
    args = train.get_args_parser().parse_args(base + ["--generated", str(generated)])
    *_, summary = prepare_data(args, cache_config, run_dir)
    assert {k: v for k, v in summary.items() if k != "generated"} == alone  # the datasets' counts
    assert sum(summary["generated"].values()) == 2  # both unreadable stand-ins, counted apart
    assert summary["generated"].get("ok", 0) == 0


def test_a_run_recorded_before_an_option_existed_resumes_only_with_that_options_default():
    from ml_core.errors import UsageError
    from ml_core.training.run import check_resumable, recipe_of

    parser = train.get_args_parser()
    args = parser.parse_args(["--data", "data", "--out", "run"])
    defaults = {key: parser.get_default(key) for key in vars(args)}
    older = {"recipe": {k: v for k, v in recipe_of(args).items() if k != "contrast"}}
    check_resumable(older, args, "last.pt", defaults)  # the run had the default: same crops
    args.contrast = "off"
    with pytest.raises(UsageError, match="--contrast 'auto' -> 'off'"):
        check_resumable(older, args, "last.pt", defaults)
