"""A private Django site for the benchmark scripts: its own SQLite database, media and var folders
under `workdir`, migrated, so a benchmark never touches the developer's data."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def setup_django(workdir, **extra_env):
    """Point the settings at `workdir`, set Django up and migrate. `extra_env`: more settings."""
    workdir = Path(workdir)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "deepfake_site.settings",
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
            "MEDIA_ROOT": str(workdir / "media"),
            "VAR_DIR": str(workdir / "var"),
            "LOG_LEVEL": "WARNING",
            **extra_env,
        }
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
