from django.urls import path
from django.views.generic import TemplateView

from . import views_health

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("healthz", views_health.healthz, name="healthz"),
]
