"""Seeding in one place, so a training run can be repeated from its config alone."""

import hashlib
import logging
import os
import random

import numpy as np
import torch

logger = logging.getLogger(__name__)


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA).

    `deterministic` also asks torch for deterministic kernels. That costs speed on CUDA and a
    few operations have no deterministic version; those warn instead of failing so a run never
    dies half way because of this switch.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        # cuBLAS needs this set before its first call to be reproducible.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
        logger.info("deterministic algorithms on (seed %d)", seed)


def derive_seed(*parts) -> int:
    """A stable 63-bit seed from ints/strings (Python's hash() is salted per process)."""
    sequence = np.random.SeedSequence([_as_int(part) for part in parts])
    return int(sequence.generate_state(1, dtype=np.uint64)[0]) % 2**63


def rng_for(*parts) -> np.random.Generator:
    """A NumPy generator that depends only on `parts` (e.g. seed, epoch, sample index)."""
    return np.random.default_rng(np.random.SeedSequence([_as_int(part) for part in parts]))


def worker_init_fn(worker_id: int) -> None:
    """DataLoader workers: derive Python/NumPy seeds from the per-worker torch seed."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def _as_int(part) -> int:
    if isinstance(part, (int, np.integer)):
        return int(part) % 2**63
    digest = hashlib.sha256(str(part).encode()).digest()
    return int.from_bytes(digest[:8], "little") % 2**63
