"""Sign-up, the account page and API tokens. Log-in, log-out and passwords use Django's views."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from ..forms import ApiTokenForm, SignupForm
from ..models import ApiToken
from ..tokens import create_token, revoke_token


@never_cache
@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("submission-list")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.username}. Upload a video to analyse it.")
        return redirect("submission-create")
    return render(request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200)


def _account_page(request, token_form, new_secret=None, status=200):
    tokens = ApiToken.objects.filter(user=request.user, revoked_at__isnull=True)
    response = render(
        request,
        "detector/account.html",
        {"token_form": token_form, "tokens": tokens, "new_secret": new_secret},
        status=status,
    )
    return response


@never_cache
@login_required
@require_http_methods(["GET"])
def account(request):
    return _account_page(request, ApiTokenForm())


@never_cache
@login_required
@require_POST
def token_create(request):
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return _account_page(request, form, status=400)
    token, secret = create_token(request.user, form.cleaned_data["name"])
    # Shown in this response only (never_cache keeps it out of caches); only its hash is stored.
    messages.success(request, f"Token “{token.name}” created. Copy it now: it is not shown again.")
    return _account_page(request, ApiTokenForm(), new_secret=secret)


@login_required
@require_POST
def token_revoke(request, token_id):
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user, revoked_at__isnull=True)
    revoke_token(token)
    messages.success(request, f"Token “{token.name}” revoked: it no longer works.")
    return redirect("account")
