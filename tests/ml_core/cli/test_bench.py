import json

from ml_core.cli import bench
from ml_core.model.checkpoints import load_checkpoint
from tests.helpers.checkpoints import make_tiny_checkpoint


def test_bench_inference_times_the_given_checkpoint_on_the_cpu(tmp_path, capsys):
    checkpoint = make_tiny_checkpoint(tmp_path / "tiny.pt")
    args = ["--inference", "--checkpoint", str(checkpoint), "--frames", "10", "--videos", "2"]
    bench.main(args + ["--repeats", "1", "--devices", "cpu", "--json"])
    (cpu,) = json.loads(capsys.readouterr().out)["results"]
    assert (cpu["device"], cpu["model"], cpu["frames"], cpu["videos_batched"]) == ("cpu", "tiny", 10, 2)
    assert cpu["fps_one_video"] > 0 and cpu["fps_batched"] > 0
    # The figures name the size the checkpoint really runs at, not a fixed one.
    assert (cpu["backbone"], cpu["image_size"]) == ("tiny", load_checkpoint(checkpoint).config.image_size)
