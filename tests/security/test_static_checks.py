"""Static security checks that run with the suite: ruff's bandit rules (S) over the service code,
and no secret, debug switch or public media route hard-coded in settings.

`manage.py check --deploy --fail-level WARNING` in production settings runs in
tests/deepfake_site/test_settings.py; the dependency audit (pip-audit) needs the network and
runs as its own CI step (see the README's security section).
"""

import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# The same exceptions pyproject.toml makes, for the same reasons (asserts in tests, fixed subprocess argv).
IGNORED = "S101,S603,S607,S311"


def ruff():
    venv_ruff = ROOT / ".venv" / "bin" / "ruff"
    if venv_ruff.exists():
        return [str(venv_ruff)]
    if shutil.which("ruff"):
        return ["ruff"]
    return [sys.executable, "-m", "ruff"]


def test_the_service_code_passes_ruffs_security_rules():
    result = subprocess.run(
        [*ruff(), "check", "--select", "S", "--ignore", IGNORED, "--output-format", "concise",
         "detector", "deepfake_site", "ml_core", "scripts"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode == 2 and "No such file" in result.stderr:
        pytest.skip("ruff is not installed")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_url_serves_the_media_folder_publicly():
    from django.urls import get_resolver

    from tests.security.test_access_control import all_named_patterns

    routes = [r.route for r in all_named_patterns(get_resolver().url_patterns)]
    assert not [r for r in routes if r.startswith(("media/", "^media"))], routes
