"""The detector model registry: install a checkpoint into the model store, choose the active one."""

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from django.core.files import File
from django.db import IntegrityError, transaction

from .models import DetectorModel

logger = logging.getLogger(__name__)


def _safe_basename(name):
    # Kept only so a reference file's name (which carries its frame count) reaches the loader.
    base = re.sub(r"[^A-Za-z0-9._-]", "_", Path(str(name or "checkpoint.pt")).name)[:150]
    return base if base.lower().endswith((".pt", ".pth")) else base + ".pt"


def _local_copy(source, folder):
    """A filesystem path for `source` (a path, or an uploaded/open file object)."""
    if isinstance(source, str | os.PathLike):
        return Path(source)
    path = Path(folder) / _safe_basename(getattr(source, "name", None))
    with open(path, "wb") as out:
        if hasattr(source, "chunks"):
            for chunk in source.chunks():
                out.write(chunk)
        else:
            source.seek(0)
            shutil.copyfileobj(source, out, 1 << 20)
    return path


def install_checkpoint(source, *, name=None, activate=False, notes=""):
    """Validate a checkpoint (ours or a reference .pt), store it at detectors/<sha256>.pt, register it.

    Raises ml_core.errors.CheckpointError (nothing stored) when the file does not load. A file
    whose SHA-256 is already registered returns the existing row (activated when asked).
    A metrics.json beside a checkpoint given as a path adds the model's test scores
    (metrics["test_scores"], see ml_core.model.test_figures); a registered row that lacks them
    (installed before they were recorded), or holds an older form of them, gets them then.
    """
    from ml_core.model.checkpoints import file_sha256, load_checkpoint
    from ml_core.model.test_figures import outdated, read_beside

    with tempfile.TemporaryDirectory(prefix="install-detector-") as folder:
        path = _local_copy(source, folder)
        sha256 = file_sha256(path) if path.is_file() else None
        existing = DetectorModel.objects.filter(sha256=sha256).first() if sha256 else None
        # Only a file given by path has a folder of its own to read metrics.json from.
        beside = isinstance(source, str | os.PathLike)
        if existing is None:
            loaded = load_checkpoint(path)  # CheckpointError with the loader's message
            test_scores = read_beside(path, sha256) if beside else None
            existing = _store(path, loaded, name=name, notes=notes, test_scores=test_scores)
        elif beside and outdated(existing.metrics.get("test_scores")):
            add_test_scores(existing, read_beside(path, sha256))
    if activate:
        activate_detector(existing)
    return existing


def add_test_scores(detector_model, test_scores):
    """Record test scores on a registered model that has none, or an older form of them; True when
    it got them."""
    from ml_core.model.test_figures import outdated

    if not test_scores:
        return False
    with transaction.atomic():
        row = DetectorModel.objects.select_for_update().get(pk=detector_model.pk)
        if not outdated(row.metrics.get("test_scores")):
            detector_model.metrics = row.metrics
            return False
        row.metrics = {**row.metrics, "test_scores": test_scores}
        row.save(update_fields=["metrics"])
    detector_model.metrics = row.metrics
    logger.info("added test figures to detector %s", detector_model)
    return True


def _store(path, loaded, *, name, notes, test_scores=None):
    metrics = {**loaded.metrics, "kind": loaded.kind}
    if test_scores:
        metrics["test_scores"] = test_scores
    detector = DetectorModel(
        name=(name or loaded.name)[:200],
        sha256=loaded.sha256,
        config=loaded.config.to_dict(),
        metrics=metrics,
        sequence_length=loaded.config.sequence_length,
        size_bytes=path.stat().st_size,
        notes=notes,
    )
    field = detector.checkpoint
    target = f"detectors/{loaded.sha256}.pt"
    stored_here = False
    if field.storage.exists(target):
        field.name = target  # same name means same bytes: reuse the file of an earlier attempt
    else:
        with open(path, "rb") as f:
            field.save(f"{loaded.sha256}.pt", File(f), save=False)
        stored_here = True
    try:
        with transaction.atomic():
            detector.save()
    except IntegrityError:
        # The same file was installed concurrently: keep theirs.
        winner = DetectorModel.objects.filter(sha256=loaded.sha256).first()
        if winner is None:
            raise
        if stored_here and winner.checkpoint.name != field.name:
            field.storage.delete(field.name)
        return winner
    except BaseException:
        if stored_here:
            field.storage.delete(field.name)
        raise
    logger.info("installed detector %s (%s, %d bytes)", detector, loaded.kind, detector.size_bytes)
    return detector


def activate_detector(detector_model):
    """Make this the only active model, then start submissions that were waiting for one."""
    from .services import start_waiting_submissions

    with transaction.atomic():
        # Deactivate first: the database allows at most one active row at any moment.
        DetectorModel.objects.filter(is_active=True).exclude(pk=detector_model.pk).update(is_active=False)
        DetectorModel.objects.filter(pk=detector_model.pk).update(is_active=True)
        detector_model.is_active = True
        start_waiting_submissions()
    logger.info("active detector is now %s", detector_model)
    return detector_model


def deactivate_detector(detector_model):
    DetectorModel.objects.filter(pk=detector_model.pk).update(is_active=False)
    detector_model.is_active = False
