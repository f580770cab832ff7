import torch

from ml_core.cli.export import main
from ml_core.errors import CheckpointError
from ml_core.model.checkpoints import file_sha256, load_checkpoint
from ml_core.model.export import export_checkpoint
from tests.helpers.checkpoints import make_tiny_checkpoint


def test_it_writes_a_smaller_float16_file_that_the_loader_reads_back_as_float32(tmp_path, capsys):
    source = make_tiny_checkpoint(tmp_path / "tiny.pt", temporal="reference", metrics={"val_auc": 0.81})
    out = tmp_path / "slim.pt"
    assert main([str(source), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "smaller" in printed and file_sha256(out) in printed
    assert out.stat().st_size < source.stat().st_size
    assert (tmp_path / "slim.pt.sha256").read_text().split()[0] == file_sha256(out)

    raw = torch.load(out, weights_only=True)
    assert raw["model"]["linear1.weight"].dtype == torch.float16
    assert raw["export"]["source_sha256"] == file_sha256(source)

    original, slim = load_checkpoint(source), load_checkpoint(out)
    assert slim.exported and slim.kind == "native"
    assert slim.config == original.config and slim.metrics == {"val_auc": 0.81}
    assert slim.name == "tiny"
    assert slim.sha256 == file_sha256(out)
    assert all(v.dtype == torch.float32 for v in slim.model.state_dict().values() if v.is_floating_point())
    x = torch.rand(1, 4, 3, 112, 112)
    with torch.no_grad():
        torch.testing.assert_close(
            slim.model(x)[0].softmax(-1), original.model(x)[0].softmax(-1), atol=5e-3, rtol=0
        )


def test_the_loader_refuses_an_export_whose_weights_were_altered(tmp_path):
    source = make_tiny_checkpoint(tmp_path / "tiny.pt")
    out, *_ = export_checkpoint(source, tmp_path / "slim.pt")
    raw = torch.load(out, weights_only=True)
    raw["model"]["linear1.bias"][0] += 1
    torch.save(raw, out)
    try:
        load_checkpoint(out)
    except CheckpointError as exc:
        assert "SHA-256" in str(exc)
    else:
        raise AssertionError("an altered export was loaded")


def test_it_reports_an_unusable_source(tmp_path, capsys):
    source = tmp_path / "page.pt"
    source.write_text("<html>not found</html>")
    assert main([str(source), str(tmp_path / "out.pt")]) == 2
    assert "HTML" in capsys.readouterr().err
    assert not (tmp_path / "out.pt").exists()
