"""Checkpoint files: our own format, the reference app's bare state_dicts, and slim exports.

Our format is a plain dict written atomically and read with `weights_only=True`:
    {"format_version": 1, "model": state_dict, "config": DetectorConfig.to_dict(),
     "metrics": {...}, "provenance": {...}, "name": str | None}
An export (ml_core.model.export) has the same keys plus "export": {"dtype", "weights_sha256", "source_sha256",
"source_name"}, with floating-point weights stored as float16; they are upcast to float32 on load.

A reference file is a bare state_dict named like `model_87_acc_20_frames_final_data.pt`; its frame
count comes from the name.
"""

import hashlib
import logging
import re
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ml_core.constants import DEFAULT_FRAMES
from ml_core.errors import CheckpointError
from ml_core.io import atomic_write
from ml_core.model.detector import DeepfakeDetector, DetectorConfig

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
REFERENCE_NAME = re.compile(
    r"^model_(?P<acc>\d+(?:\.\d+)?)_acc_(?P<frames>\d+)_frames_(?P<tag>.+?)\.(?:pt|pth)$", re.IGNORECASE
)


@dataclass
class LoadedCheckpoint:
    model: DeepfakeDetector  # eval mode, on map_location
    config: DetectorConfig
    sha256: str
    name: str
    metrics: dict = field(default_factory=dict)
    kind: str = "native"  # "native" (our format) | "reference" (bare reference state_dict)
    path: str = ""
    provenance: dict = field(default_factory=dict)
    exported: bool = False
    load_seconds: float = 0.0

    def info(self):
        """JSON-safe description (no weights)."""
        return {
            "name": self.name,
            "sha256": self.sha256,
            "kind": self.kind,
            "path": self.path,
            "exported": self.exported,
            "config": self.config.to_dict(),
            "metrics": self.metrics,
            "provenance": self.provenance,
        }


@dataclass(frozen=True)
class ReferenceName:
    accuracy: float
    frames: int
    tag: str


def parse_reference_name(name):
    """`model_87_acc_20_frames_final_data.pt` -> ReferenceName(87.0, 20, "final_data"), else None."""
    match = REFERENCE_NAME.match(Path(name).name)
    if not match:
        return None
    return ReferenceName(float(match["acc"]), int(match["frames"]), match["tag"])


def choose_reference_checkpoint(paths, frames):
    """Pick the reference file for `frames`: exact frame count, then the highest accuracy.

    Numbers are compared as numbers (the reference app compared "97" > "100" as strings).
    Falls back to the closest frame count. Returns None when no path has a reference-style name.
    """
    named = [(p, parse_reference_name(p)) for p in paths]
    named = [(p, n) for p, n in named if n is not None]
    if not named:
        return None
    best = min(named, key=lambda pn: (abs(pn[1].frames - frames), -pn[1].frames, -pn[1].accuracy))
    return Path(best[0])


def file_sha256(path, chunk_size=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def state_dict_sha256(state_dict):
    """Hash of the tensors' names, dtypes, shapes and bytes (independent of the file's zip layout)."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().cpu()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        if tensor.numel():
            digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy())  # no copy
    return digest.hexdigest()


def atomic_save(obj, path):
    """torch.save, whole or not at all (ml_core.io.atomic_write)."""
    with atomic_write(path) as handle:
        torch.save(obj, handle)
    return Path(path)


def checkpoint_dict(model, config, *, metrics=None, provenance=None, name=None):
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {
        "format_version": FORMAT_VERSION,
        "model": state,
        "config": config.to_dict(),
        "metrics": dict(metrics or {}),
        "provenance": dict(provenance or {}),
        "name": name,
    }


def save_checkpoint(path, model, config, *, metrics=None, provenance=None, name=None):
    """Write our format atomically. metrics/provenance: plain JSON-like values only."""
    return atomic_save(
        checkpoint_dict(model, config, metrics=metrics, provenance=provenance, name=name), path
    )


def _fail(path, detail, user_message=None):
    message = f"{Path(path).name}: {detail}"
    raise CheckpointError(message, user_message=user_message or f"The detector checkpoint {message}")


def _read_file(path):
    path = Path(path)
    if not path.is_file():
        _fail(path, "does not exist or is not a file.")
    if path.stat().st_size == 0:
        _fail(path, "is empty (0 bytes): the download or copy did not finish.")
    with open(path, "rb") as f:
        head = f.read(512)
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<")) or b"<html" in text:
        _fail(
            path,
            "is an HTML page, not a PyTorch checkpoint (a download page or error page was saved "
            "instead of the file). Download the .pt file itself.",
        )
    if head.startswith(b"PK") and not zipfile.is_zipfile(path):
        _fail(path, "is truncated or damaged (its zip archive is incomplete). Download it again.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        text = str(exc)
        if "weights_only" in text or "Unsupported global" in text or "Unpickler" in text:
            _fail(
                path,
                "contains Python objects other than tensors and plain values; it is refused because "
                "loading it could run arbitrary code (weights_only=True).",
            )
        _fail(path, f"is not a readable PyTorch checkpoint (truncated or corrupt?): {text[:200]}")


def _is_state_dict(obj):
    return (
        isinstance(obj, dict)
        and obj
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _build(path, config, state_dict):
    # Built on the meta device (no random initialisation: ~2 s saved for ResNeXt50 + LSTM), then
    # the loaded tensors are assigned in place of the placeholders.
    with torch.device("meta"):
        model = DeepfakeDetector(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = [
        f"{k} {tuple(state_dict[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        problems.append(f"{len(wrong)} tensors with the wrong shape (e.g. {'; '.join(wrong[:3])})")
    if problems:
        _fail(path, "does not match the detector architecture: " + "; ".join(problems) + ".")
    model.load_state_dict(state_dict, strict=True, assign=True)
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        _fail(path, "left some detector tensors unset.")
    return model.eval()


def _upcast(state_dict):
    return {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}


def load_checkpoint(path, map_location="cpu"):
    """Load our format, an export, or a bare reference state_dict; raise CheckpointError otherwise."""
    started = time.perf_counter()
    path = Path(path)
    obj = _read_file(path)
    sha256 = file_sha256(path)
    exported = False
    provenance, metrics = {}, {}
    if isinstance(obj, dict) and "format_version" in obj:
        if obj["format_version"] != FORMAT_VERSION:
            _fail(path, f"has format_version {obj['format_version']}; this version reads {FORMAT_VERSION}.")
        if not _is_state_dict(obj.get("model")) or not isinstance(obj.get("config"), dict):
            _fail(path, "has no 'model' state_dict or no 'config'.")
        try:
            config = DetectorConfig.from_dict(obj["config"])
        except (TypeError, ValueError) as exc:
            _fail(path, f"has an invalid config: {exc}")
        state_dict = obj["model"]
        export = obj.get("export")
        if export:
            exported = True
            if state_dict_sha256(state_dict) != export.get("weights_sha256"):
                _fail(path, "is damaged: its weights do not match the SHA-256 recorded at export.")
            state_dict = _upcast(state_dict)
        kind = "native"
        metrics = dict(obj.get("metrics") or {})
        provenance = dict(obj.get("provenance") or {})
        if export:
            provenance["export"] = dict(export)
        name = obj.get("name") or path.stem
    elif _is_state_dict(obj):
        if all(k.startswith("module.") for k in obj):  # saved from nn.DataParallel
            obj = {k.removeprefix("module."): v for k, v in obj.items()}
        if not any(k.startswith("lstm.") for k in obj) or "linear1.weight" not in obj:
            _fail(path, "is a state_dict but not one of this detector (no 'lstm' / 'linear1' weights).")
        parsed = parse_reference_name(path.name)
        if parsed is None:
            logger.warning("%s: not a reference-style file name; assuming 20 frames", path.name)
        config = DetectorConfig.reference(sequence_length=parsed.frames if parsed else 20)
        state_dict = _upcast(obj)
        kind = "reference"
        name = path.stem
        if parsed:
            metrics = {"reported_accuracy": parsed.accuracy}
            provenance = {"source": "reference app", "tag": parsed.tag}
    elif isinstance(obj, dict) and "optimizer" in obj:
        _fail(path, "is a training resume file, not a checkpoint; use the run's best.pt (or export it).")
    else:
        _fail(path, f"holds a {type(obj).__name__}, not a detector checkpoint or state_dict.")

    model = _build(path, config, state_dict).to(map_location)
    loaded = LoadedCheckpoint(
        model=model,
        config=config,
        sha256=sha256,
        name=name,
        metrics=metrics,
        kind=kind,
        path=str(path),
        provenance=provenance,
        exported=exported,
        load_seconds=time.perf_counter() - started,
    )
    logger.info("loaded %s checkpoint %s (sha256 %s) in %.2fs", kind, name, sha256[:12], loaded.load_seconds)
    return loaded


def resolve_checkpoint(path, frames=None):
    """A checkpoint file, or a folder of them: reference-style names are chosen by frame count
    (numerically), otherwise the folder must hold exactly one .pt/.pth file."""
    path = Path(path)
    if not path.is_dir():
        return path
    candidates = sorted(p for p in path.iterdir() if p.suffix.lower() in (".pt", ".pth") and p.is_file())
    chosen = choose_reference_checkpoint(candidates, frames or DEFAULT_FRAMES)
    if chosen is not None:
        return chosen
    if len(candidates) == 1:
        return candidates[0]
    names = ", ".join(p.name for p in candidates) or "none"
    raise CheckpointError(
        f"{path}: cannot choose a checkpoint among {len(candidates)} files ({names})",
        user_message=f"Choose one checkpoint file in {path} (found: {names}).",
    )
