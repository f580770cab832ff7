"""The detector model inside a worker process: loaded once, lazily, after the fork.

Nothing here runs at import time, so the prefork parent never touches torch or CUDA (CUDA does not
survive fork); each pool child loads the model on its first job. The checkpoint is copied from
media storage (which may be remote, e.g. S3) into a local cache keyed by its SHA-256, and the
process keeps one Predictor: when an admin activates another model its SHA-256 differs and the
next job loads the new one, with no worker restart.
"""

import hashlib
import logging
import os
import threading
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_current = {"sha256": None, "predictor": None}


def cache_dir():
    return Path(settings.DETECTOR_CACHE_DIR)


def cached_file_name(detector_model):
    # A bare reference state_dict carries no config: the loader reads the frame count from a
    # reference-style file name, so the cached copy keeps one. Our own format ignores the name.
    return f"model_0_acc_{detector_model.sequence_length or 20}_frames_{detector_model.sha256[:12]}.pt"


def local_checkpoint(detector_model):
    """Path of a local copy of the model's checkpoint, verified against its SHA-256."""
    from ml_core.errors import CheckpointError
    from ml_core.io import atomic_write

    path = cache_dir() / detector_model.sha256 / cached_file_name(detector_model)
    if path.is_file():
        return path
    # Other processes on this host see a whole, verified file or none.
    with atomic_write(path) as out, detector_model.checkpoint.open("rb") as src:
        digest = hashlib.sha256()
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
        if digest.hexdigest() != detector_model.sha256:
            raise CheckpointError(
                f"stored checkpoint {detector_model.checkpoint.name} has SHA-256 {digest.hexdigest()}, "
                f"but the registry records {detector_model.sha256}"
            )
    logger.info("cached checkpoint %s at %s", detector_model.sha256[:12], path)
    return path


def get_predictor(detector_model):
    """The process's Predictor for this DetectorModel, (re)loaded when its SHA-256 changes."""
    with _lock:
        if _current["sha256"] == detector_model.sha256:
            return _current["predictor"]
        from ml_core.inference.predictor import Predictor

        _current["sha256"] = _current["predictor"] = None  # free the old weights before loading
        path = local_checkpoint(detector_model)
        predictor = Predictor(
            path,
            device=getattr(settings, "DETECTOR_DEVICE", "") or None,
            uncertain_band=getattr(settings, "DETECTOR_UNCERTAIN_BAND", None),
        )
        if predictor.model_sha256 != detector_model.sha256:  # the cache was tampered with
            raise RuntimeError(f"cached checkpoint {path} does not match {detector_model.sha256}")
        _current.update(sha256=detector_model.sha256, predictor=predictor)
        logger.info("worker pid %s loaded detector %s on %s", os.getpid(), detector_model, predictor.device)
        return predictor


def loaded_sha256():
    return _current["sha256"]


def forget():
    """Drop the process's model (tests)."""
    with _lock:
        _current.update(sha256=None, predictor=None)
