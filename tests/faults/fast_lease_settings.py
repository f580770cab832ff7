"""Settings for fault tests that wait for a dead job holder's lease: a short heartbeat and lease."""

from deepfake_site.settings import *  # noqa: F403

DETECTOR_HEARTBEAT_SECONDS = 1
DETECTOR_LEASE_SECONDS = 6
