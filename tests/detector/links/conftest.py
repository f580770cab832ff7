"""Fixtures for the link tests: a local server, a small video, and the private-address setting."""

import pytest

from tests.helpers.link_server import LinkServer
from tests.helpers.videos import make_face_video


@pytest.fixture
def server():
    server = LinkServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def clip_bytes(tmp_path_factory):
    return make_face_video(tmp_path_factory.mktemp("link-clips") / "clip.mp4", count=20).read_bytes()


@pytest.fixture
def private_allowed(settings):
    """The test server is on loopback: allowed only with the setting on, as in a closed intranet."""
    settings.LINK_ALLOW_PRIVATE_ADDRESSES = True
    settings.LINK_STALL_SECONDS = 2
    settings.LINK_FETCH_SECONDS = 30
