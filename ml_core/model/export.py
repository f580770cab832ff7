"""A slim inference file (command: `python -m ml_core.cli.export CHECKPOINT OUT`).

Keeps only what inference needs (float16 weights, config, metrics, name) plus the SHA-256 of the
weights (checked when loading) and of the source file. Also writes OUT.sha256 (sha256sum format).
"""

from pathlib import Path

import torch

from ml_core.io import atomic_write
from ml_core.model.checkpoints import (
    FORMAT_VERSION,
    atomic_save,
    file_sha256,
    load_checkpoint,
    state_dict_sha256,
)


def export_checkpoint(source, out, dtype=torch.float16):
    """Export `source` (any loadable checkpoint) to `out`; returns (out, source bytes, out bytes, sha256)."""
    loaded = load_checkpoint(source)
    state = {
        k: v.detach().to(dtype) if v.is_floating_point() else v.detach()
        for k, v in loaded.model.state_dict().items()
    }
    provenance = {k: v for k, v in loaded.provenance.items() if k != "export"}
    payload = {
        "format_version": FORMAT_VERSION,
        "model": state,
        "config": loaded.config.to_dict(),
        "metrics": loaded.metrics,
        "provenance": provenance,
        "name": loaded.name,
        "export": {
            "dtype": str(dtype).removeprefix("torch."),
            "weights_sha256": state_dict_sha256(state),
            "source_sha256": loaded.sha256,
            "source_name": Path(source).name,
            "source_kind": loaded.kind,
        },
    }
    out = atomic_save(payload, out)
    sha256 = file_sha256(out)
    with atomic_write(f"{out}.sha256", "w") as handle:
        handle.write(f"{sha256}  {out.name}\n")
    return out, Path(source).stat().st_size, out.stat().st_size, sha256
