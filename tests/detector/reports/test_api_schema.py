"""The report endpoints' real responses, checked against the OpenAPI document we publish."""

import pytest

from tests.detector.test_api_schema import api_client, assert_matches_the_document
from tests.helpers.web import make_submission

pytestmark = pytest.mark.django_db


def test_a_report_and_its_refusals_match_the_document(owner, other, finished):
    client = api_client(owner)
    base = f"/api/v1/submissions/{finished.public_id}"
    response = client.get(f"{base}/report.json")  # (openapi-core cannot check a binary PDF body)
    assert response.status_code == 200
    assert_matches_the_document(response)
    running = make_submission(owner, status="running")
    for kind in ("json", "pdf"):
        refused = client.get(f"/api/v1/submissions/{running.public_id}/report.{kind}")
        assert refused.status_code == 409
        assert_matches_the_document(refused)
    hidden = api_client(other).get(f"{base}/report.pdf")
    assert hidden.status_code == 404
    assert_matches_the_document(hidden)
