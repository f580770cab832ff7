from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy
from django.views.generic import TemplateView

from .api import reports as api_reports
from .api import views as api
from .auth_throttle import ThrottledAuthenticationForm
from .views import accounts, health, media, model_card, reports, site, submissions

account_urls = [
    path("accounts/signup/", accounts.signup, name="signup"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(
            authentication_form=ThrottledAuthenticationForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path(
        "accounts/password/reset/",
        auth_views.PasswordResetView.as_view(success_url=reverse_lazy("password_reset_done")),
        name="password_reset",
    ),
    path(
        "accounts/password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("account/", accounts.account, name="account"),
    path("account/tokens/", accounts.token_create, name="account-token-create"),
    path("account/tokens/<int:token_id>/revoke/", accounts.token_revoke, name="account-token-revoke"),
]

submission_urls = [
    path("submissions/", submissions.submission_list, name="submission-list"),
    path("submissions/new/", submissions.submission_create, name="submission-create"),
    path("submissions/<uuid:public_id>/", submissions.submission_detail, name="submission-detail"),
    path("submissions/<uuid:public_id>/status.json", submissions.submission_status, name="submission-status"),
    path("submissions/<uuid:public_id>/delete/", submissions.submission_delete, name="submission-delete"),
    path("submissions/<uuid:public_id>/video", media.submission_video, name="submission-video"),
    path(
        "submissions/<uuid:public_id>/frames/<int:frame_id>/<str:kind>/",
        media.submission_frame_image,
        name="submission-frame-image",
    ),
    path(
        "submissions/<uuid:public_id>/report.pdf",
        reports.submission_report,
        {"kind": "pdf"},
        name="submission-report-pdf",
    ),
    path(
        "submissions/<uuid:public_id>/report.json",
        reports.submission_report,
        {"kind": "json"},
        name="submission-report-json",
    ),
]

report_urls = [
    path("reports/verify/", reports.verify, name="report-verify"),
    path("reports/keys.json", reports.public_keys, name="report-public-keys"),
]

api_urls = [
    path("api/v1/submissions/", api.submission_collection, name="api-submission-list"),
    path("api/v1/submissions/<uuid:public_id>/", api.submission_detail, name="api-submission-detail"),
    path(
        "api/v1/submissions/<uuid:public_id>/report.pdf",
        api_reports.submission_report,
        {"kind": "pdf"},
        name="api-submission-report-pdf",
    ),
    path(
        "api/v1/submissions/<uuid:public_id>/report.json",
        api_reports.submission_report,
        {"kind": "json"},
        name="api-submission-report-json",
    ),
    path("api/v1/openapi.json", api.openapi, name="api-openapi"),
]

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("favicon.ico", site.favicon, name="favicon"),
    path("model/", model_card.model_card, name="model-card"),
    *account_urls,
    *submission_urls,
    *report_urls,
    *api_urls,
]
