"""A reduced run of scripts/loadtest.py: 5 users against gunicorn (production settings) and 2 workers.

Asserts no errors, no lost and no duplicated submission; latencies are printed, not asserted
(the full 20-user figures are in the README's security section).
"""

import importlib.util
import shutil

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def load_script():
    spec = importlib.util.spec_from_file_location("loadtest", ROOT / "scripts" / "loadtest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server for a private broker")
def test_five_users_uploading_and_polling_lose_and_duplicate_nothing():
    loadtest = load_script()
    figures = loadtest.run(users=5, workers=2, database="sqlite", time_limit=240)
    print(loadtest.report(figures))
    assert figures["errors"] == []
    assert figures["uploads_sent"] == figures["uploads_expected"] == 5
    assert figures["lost"] == [] and figures["duplicated"] == []
    assert figures["rows"] == 5 and figures["done"] == 5
    assert figures["latencies"]["status_poll"]  # the page's polling really ran
