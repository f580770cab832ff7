import pytest
from django.db.utils import OperationalError

from detector.views import health
from tests.conftest import reset_connections


@pytest.mark.django_db
def test_it_reports_database_and_broker_up(client, celery_broker):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True


@pytest.mark.django_db
def test_it_answers_503_when_the_broker_is_down(client, celery_broker):
    # Nothing listens on port 1: the broker is unreachable.
    celery_broker.conf.broker_url = "redis://127.0.0.1:1/0"
    reset_connections(celery_broker)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is False
    assert "error" not in response.json()["broker"], "anonymous callers must not see error details"


@pytest.mark.django_db
def test_it_answers_503_when_the_database_is_down(client, celery_broker, monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise OperationalError("database is down")

    monkeypatch.setattr(health.connection, "cursor", broken_cursor)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"]["ok"] is False


@pytest.mark.django_db
def test_it_refuses_post(client):
    assert client.post("/healthz").status_code == 405
