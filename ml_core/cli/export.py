"""Write a slim inference file: `python -m ml_core.cli.export CHECKPOINT OUT`.

Keeps only what inference needs (float16 weights, config, metrics, name) plus the SHA-256 of the
weights (checked when loading) and of the source file. Also writes OUT.sha256 (sha256sum format).
"""

import argparse
import sys
from pathlib import Path

from ml_core.errors import MlCoreError
from ml_core.model.export import export_checkpoint


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ml_core.cli.export", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        out, before, after, sha256 = export_checkpoint(args.checkpoint, args.out)
    except MlCoreError as exc:
        print(f"error: {exc.user_message}", file=sys.stderr)
        return 2
    saved = 100 * (1 - after / before)
    print(f"wrote {out} ({after / 1e6:.1f} MB, {saved:.0f}% smaller than {before / 1e6:.1f} MB)")
    print(f"sha256 {sha256}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
