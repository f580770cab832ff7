"""The model page: the active model's card, rendered from its record, for every signed-in user."""

import pytest
from django.test import Client
from django.urls import reverse

from detector.models import DetectorModel
from ml_core.constants import DEFAULT_CHECKPOINT
from ml_core.model.test_figures import read_beside
from tests.helpers.web import make_user

pytestmark = pytest.mark.django_db


def card_page(user):
    client = Client()
    client.force_login(user)
    return client.get(reverse("model-card"))


def shipped_like(**fields):
    """A row as install_detector makes for the shipped model: its config and its test figures."""
    values = {
        "name": "default (default/detector.pt)",
        "sha256": "7a" * 32,
        "config": {
            "backbone": "efficientnet_lite0",
            "temporal": "reference",
            "aggregation": "mean",
            "image_size": 160,
            "threshold": 0.8039,
            "uncertain_band": 0.1,
        },
        "metrics": {
            "kind": "native",
            "val_video_auc": 0.7637,
            "test_scores": read_beside(DEFAULT_CHECKPOINT),
        },
        "is_active": True,
    }
    values.update(fields)
    return DetectorModel.objects.create(**values)


def test_a_signed_in_user_reads_the_active_models_card(owner):
    shipped_like()
    response = card_page(owner)
    assert response.status_code == 200
    html = response.content.decode()
    assert "EfficientNet-Lite0 (ImageNet-pretrained) per face" in html and "ResNeXt" not in html
    assert "7a" * 32 in html  # the whole SHA-256
    assert "face crops of 160 × 160 pixels" in html
    assert "log-odds" in html  # how the score is made
    assert "threshold is <strong>0.804</strong>" in html
    assert "<strong>FAKE</strong> at 0.90 or above, <strong>REAL</strong> at 0.70 or below" in html
    assert "<strong>2 of 19 (11%)</strong> real videos reached the threshold" in html
    assert "13 of 28 (46%) fake videos did" in html
    assert "after heavy re-compression" in html and "0.72" in html
    methods = html.split('data-testid="card-methods"')[1].split("</table>")[0]
    assert '<td>DFDC</td><td class="text-end">8</td><td class="text-end">0.63</td>' in methods
    weaknesses = html.split('data-testid="card-weaknesses"')[1].split("</ul>")[0]
    assert "Heavy compression." in weaknesses
    assert "few real videos (19)" in weaknesses  # added from the figures themselves
    assert "only 75% of the time" in weaknesses
    splits = html.split('data-testid="card-splits"')[1].split("</table>")[0]
    assert '<td>train</td><td class="text-end">45</td><td class="text-end">69</td>' in splits


def test_only_the_active_model_is_shown(owner):
    shipped_like(is_active=False, name="older model", sha256="cd" * 32)
    shipped_like(name="the active one")
    html = card_page(owner).content.decode()
    assert "the active one" in html and "older model" not in html


def test_a_model_without_figures_says_it_comes_with_none(owner):
    shipped_like(
        metrics={"kind": "reference"}, config={"backbone": "resnext50_32x4d", "temporal": "reference"}
    )
    html = card_page(owner).content.decode()
    assert "ResNeXt50 (32x4d) per face" in html
    assert "This model comes with no test figures" in html
    assert "Not recorded with this model." in html


def test_without_an_active_model_the_page_says_so(owner):
    response = card_page(owner)
    assert response.status_code == 200
    assert 'data-testid="no-model"' in response.content.decode()


def test_every_signed_in_user_may_read_it_and_nobody_else(client):
    shipped_like()
    assert card_page(make_user("someone")).status_code == 200
    response = client.get(reverse("model-card"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert Client().post(reverse("model-card")).status_code in (302, 405)
