"""The generated-fakes rows of the model card's ablation table: the shipped recipe, trained again
with our own generated fakes (ml_core.cli.make_fakes) added to its training clips, and tested on
the same identity-disjoint test split, clean and re-encoded at c40.

    .venv/bin/python scripts/ablate_generated.py [--base lite0|residual] [--variants none,both,swap,mouth]

Needs a finished `make model` run in var/default-model (its split, crop cache and test figures).
Fakes are made once, for training-split people only, into var/fakes/train (about 7 minutes on 2
cores); each variant trains in var/ablate/<base>-<variant> and prints its test AUCs.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml_core.cli import make_fakes, train  # noqa: E402
from ml_core.cli.default_model import RECIPES, slim_report, test_reports  # noqa: E402
from ml_core.training.fakes.reader import MANIFEST, read_manifest  # noqa: E402

SHARED = ROOT.parent / "shared"
DATA = ["--data", str(SHARED / "training"), "--data", str(SHARED / "videos")]


def kind_folder(fakes: Path, kind: str) -> Path:
    """A view of `fakes` with one kind of fake and all the reals (links, a filtered manifest)."""
    folder = fakes.parent / f"{fakes.name}-{kind}"
    folder.mkdir(exist_ok=True)
    for sub in ("real", kind):
        link = folder / sub
        if not link.exists():
            link.symlink_to((fakes / sub).resolve(), target_is_directory=True)
    rows = [row for row in read_manifest(fakes) if row["kind"] in ("real", kind)]
    lines = ["\t".join(rows[0])] + ["\t".join(row.values()) for row in rows]
    (folder / MANIFEST).write_text("\n".join(lines) + "\n")
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="lite0", choices=tuple(RECIPES), help="recipe to add the fakes to")
    parser.add_argument(
        "--variants",
        default="both,swap,mouth",
        help="comma list of: none (the recipe alone), both, swap, mouth; a '+robust' suffix also "
        "trains with --augment robust --val-crf 40",
    )
    parser.add_argument("--run-dir", default=str(ROOT / "var" / "default-model"))
    parser.add_argument("--out", default=str(ROOT / "var" / "ablate"))
    args = parser.parse_args(argv)
    run_dir, out = Path(args.run_dir), Path(args.out)
    fakes = ROOT / "var" / "fakes" / "train"
    if not (fakes / MANIFEST).is_file():
        make_fakes.main(
            DATA
            + ["--split", str(run_dir / "split.json"), "--subset", "train", "--kinds", "swap,mouth"]
            + ["--compressions", "c23,c40", "--out", str(fakes)]
        )
    common = ["--cache-dir", str(run_dir / "cache"), "--no-progress"]
    results = {}
    for variant in args.variants.split(","):
        kinds, _, robust = variant.partition("+")
        extra = ["--augment", "robust", "--val-crf", "40"] if robust == "robust" else []
        if kinds != "none":
            extra += ["--generated", str(fakes if kinds == "both" else kind_folder(fakes, kinds))]
        variant_dir = out / f"{args.base}-{variant}"
        variant_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(run_dir / "split.json", variant_dir / "split.json")  # the same test clips
        resume = ["--resume"] if (variant_dir / "last.pt").is_file() else []
        train.main(RECIPES[args.base] + DATA + common + resume + extra + ["--out", str(variant_dir)])
        reports = test_reports(variant_dir / "best.pt", variant_dir, DATA, common, [])
        results[variant] = {name: slim_report(report) for name, report in reports.items()}
        (variant_dir / "test.json").write_text(json.dumps(results[variant], indent=1, default=str))
        print(variant, {name: r["video"]["auc"] for name, r in results[variant].items()}, flush=True)
    return results


if __name__ == "__main__":
    main()
