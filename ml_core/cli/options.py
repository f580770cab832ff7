"""Command-line options more than one command takes, so they read and behave the same."""

from ml_core.training.datasets import LAYOUTS


def add_dataset_options(parser):
    """--data (repeatable), --layout, --compression, --identity-pattern: read by training.run.load_data."""
    parser.add_argument(
        "--data", action="append", required=True, help="dataset folder or label CSV (repeatable)"
    )
    parser.add_argument("--layout", default="auto", choices=LAYOUTS)
    parser.add_argument("--compression", default="c23", help="FaceForensics++ compression (raw, c23, c40)")
    parser.add_argument(
        "--identity-pattern",
        default=None,
        help="regex on file names whose groups name the person (folder/CSV layouts), for splits",
    )
