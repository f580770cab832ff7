import json

import pytest

from ml_core.io import atomic_write, write_json


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(path, "w") as handle:
        handle.write("half of the new")
        raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_finished_write_replaces_the_file_and_makes_its_folder(tmp_path):
    path = tmp_path / "new" / "weights.bin"
    with atomic_write(path) as handle:
        handle.write(b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert [p.name for p in path.parent.iterdir()] == ["weights.bin"]


def test_write_json_round_trips_and_refuses_nan_when_asked(tmp_path):
    path = write_json(tmp_path / "m.json", {"auc": 0.9, "ids": [1, 2]})
    assert json.loads(path.read_text()) == {"auc": 0.9, "ids": [1, 2]}
    with pytest.raises(ValueError):
        write_json(path, {"auc": float("nan")}, allow_nan=False)
    assert json.loads(path.read_text())["auc"] == 0.9
