"""Access control for every URL the project routes, found by walking the URL configuration.

`RULES` maps each URL name to who may open it. The walk (`all_named_patterns`) collects every
named pattern from `get_resolver()`, recursively, so a view added without a line in `RULES`
fails `test_every_routed_url_has_an_access_rule`, and a rule whose URL disappeared fails too.

Four visitors: anonymous, another user, a staff user without the review permission, and the
owner of the submission the URL points at. Outsiders get 404 (never 403: a stranger must not
learn that an id exists); anonymous visitors of pages are sent to the login page.
"""

import re
import uuid
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.files.base import ContentFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from detector.models import ApiToken, DetectorModel, FrameImage, Result, Submission, User
from detector.tokens import create_token

pytestmark = pytest.mark.django_db

# --- what each visitor should get ----------------------------------------------------------

OK = frozenset({200})
NOT_FOUND = frozenset({404})
LOGIN = "login"  # a redirect to the login page (302 to settings.LOGIN_URL with ?next=)
ADMIN_LOGIN = "admin-login"  # a redirect to the admin login page
API_DENIED = frozenset({401, 403})
POST_ONLY = frozenset({405})


@dataclass(frozen=True)
class Rule:
    anonymous: object
    other: object
    staff: object
    owner: object
    note: str = ""


PUBLIC = Rule(OK, OK, OK, OK, "anyone")
# Pages for signed-out visitors; signed-in visitors may be redirected away (to their list).
PUBLIC_OR_REDIRECT = Rule(OK, frozenset({200, 302}), frozenset({200, 302}), frozenset({200, 302}))
SIGNED_IN = Rule(LOGIN, OK, OK, OK, "any signed-in user")
OWNER = Rule(frozenset({302, 404}), NOT_FOUND, NOT_FOUND, OK, "the owner only (staff use the admin)")
OWNER_POST = Rule(frozenset({302, 404, 405}), NOT_FOUND, NOT_FOUND, frozenset({200, 302, 405}))
API_SIGNED_IN = Rule(API_DENIED, OK, OK, OK, "any authenticated API client")
API_OWNER = Rule(API_DENIED | NOT_FOUND, NOT_FOUND, NOT_FOUND, OK, "the owner only")
LOGOUT = Rule(frozenset({200, 302, 405}), frozenset({200, 302, 405}), frozenset({200, 302, 405}),
              frozenset({200, 302, 405}))  # fmt: skip
# The Django admin: only staff get in; what they see inside depends on model permissions.
ADMIN = Rule(ADMIN_LOGIN, ADMIN_LOGIN, frozenset({200, 302, 403, 404}), ADMIN_LOGIN, "staff")
_ANY = frozenset({200, 302, 405})  # logout is POST-only since Django 5
ADMIN_PUBLIC = Rule(_ANY, _ANY, _ANY, _ANY)
# Model pages in the admin: a staff user without the model permission is refused.
ADMIN_MODEL = Rule(ADMIN_LOGIN, ADMIN_LOGIN, frozenset({403, 404, 302}), ADMIN_LOGIN, "staff with permission")

# POST-only views may answer a GET with 405 before looking at the object: that leaks nothing.
_POSTED = frozenset({200, 302, 405})
TOKEN_OWNER = Rule(LOGIN, frozenset({404, 405}), frozenset({404, 405}), _POSTED, "the token's owner (POST)")
SIGNED_IN_POST = Rule(LOGIN, _POSTED, _POSTED, _POSTED)

RULES = {
    "home": PUBLIC,
    "healthz": PUBLIC,
    "favicon": Rule(*[frozenset({301})] * 4, "anyone: a permanent redirect to the static icon"),
    "model-card": SIGNED_IN,  # the active model only: no id in the URL
    # accounts
    "signup": PUBLIC_OR_REDIRECT,
    "login": PUBLIC_OR_REDIRECT,
    "logout": LOGOUT,
    "password_change": SIGNED_IN,
    "password_change_done": SIGNED_IN,
    "password_reset": PUBLIC,
    "password_reset_done": PUBLIC,
    "password_reset_confirm": PUBLIC,  # an invalid link renders "invalid link"
    "password_reset_complete": PUBLIC,
    "account": SIGNED_IN,
    "account-token-create": SIGNED_IN_POST,
    "account-token-revoke": TOKEN_OWNER,
    # pages and private media
    "submission-list": SIGNED_IN,
    "submission-create": SIGNED_IN,
    "submission-detail": OWNER,
    "submission-status": OWNER,
    "submission-delete": OWNER_POST,
    "submission-video": OWNER,
    "submission-frame-image": OWNER,
    # signed reports: the submission's rule; verifying one and the public keys need no account
    "submission-report-pdf": OWNER,
    "submission-report-json": OWNER,
    "report-verify": PUBLIC,
    "report-public-keys": PUBLIC,
    # API (token authentication only; the session cookie is ignored)
    "api-submission-list": API_SIGNED_IN,
    "api-submission-detail": API_OWNER,
    "api-submission-report-pdf": API_OWNER,
    "api-submission-report-json": API_OWNER,
    "api-openapi": PUBLIC,
}
API_NAMES = {
    "api-submission-list",
    "api-submission-detail",
    "api-submission-report-pdf",
    "api-submission-report-json",
}

# Admin names are matched by pattern: every ModelAdmin gets the same set of views.
ADMIN_RULES = [
    (re.compile(r"^admin:(login|logout)$"), ADMIN_PUBLIC),
    (re.compile(r"^admin:(index|app_list|jsi18n|autocomplete|password_change|password_change_done)$"), ADMIN),
    (re.compile(r"^admin:view_on_site$"), ADMIN),
    # The `staff` visitor holds detector.view_user (an unrelated permission), so user pages open.
    (re.compile(r"^admin:detector_user_(changelist|change|history)$"), ADMIN),
    (re.compile(r"^admin:\w+_\w+_(changelist|add|change|delete|history)$"), ADMIN_MODEL),
    (re.compile(r"^admin:\w+_\w+_\w+$"), ADMIN_MODEL),  # custom admin views (e.g. an activate action)
]


def rule_for(name):
    if name in RULES:
        return RULES[name]
    for pattern, rule in ADMIN_RULES:
        if pattern.match(name):
            return rule
    return None


# --- walking the URL configuration ------------------------------------------------------------


@dataclass
class Route:
    name: str
    params: tuple
    route: str


def all_named_patterns(patterns=None, namespace="", prefix=""):
    """Every URLPattern under the root resolver as Route(name with namespace, params, route text)."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    routes = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            routes += all_named_patterns(entry.url_patterns, inner, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            params = tuple(_params(entry.pattern))
            name = f"{namespace}{entry.name}" if entry.name else None
            if name is None and namespace == "admin:":
                # Django's own unnamed admin redirects (<object_id>/ -> change page, catch-all):
                # the admin site guards them like its other views; see the admin test below.
                continue
            routes.append(Route(name, params, prefix + str(entry.pattern)))
    return routes


def _params(pattern):
    converters = getattr(pattern, "converters", None)
    if converters:
        return list(converters)
    regex = getattr(pattern, "regex", None)
    return list(regex.groupindex) if regex is not None else []


# --- the world each visitor lives in --------------------------------------------------------------


@pytest.fixture
def world(settings):
    owner = User.objects.create_user("owner", "owner@example.org", "pw-owner-123")
    other = User.objects.create_user("other", "other@example.org", "pw-other-123")
    staff = User.objects.create_user("staffer", "staff@example.org", "pw-staff-123", is_staff=True)
    # A staff member with some unrelated permission, but not the review/view permission.
    staff.user_permissions.add(Permission.objects.get(codename="view_user"))
    detector = DetectorModel.objects.create(name="tiny", sha256="a" * 64, is_active=True)
    detector.checkpoint.save("x.pt", ContentFile(b"not really a checkpoint"), save=True)
    submission = Submission(owner=owner, original_name="owner-secret-clip.mp4", size_bytes=10)
    submission._stored_extension = ".mp4"
    submission.video.save("video.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42" + b"0" * 64), save=False)
    submission.status = Submission.Status.DONE
    submission.save()
    result = Result.objects.create(
        submission=submission, verdict="FAKE", fake_probability=0.9, model_name="tiny", model_sha256="a" * 64
    )
    frame = FrameImage(result=result, position=0, frame_index=3, timestamp=0.3)
    frame.crop.save("crop-000.jpg", ContentFile(b"\xff\xd8\xff\xe0crop"), save=False)
    frame.overlay.save("overlay-000.jpg", ContentFile(b"\xff\xd8\xff\xe0overlay"), save=False)
    frame.save()
    submission.current_result = result
    submission.save(update_fields=["current_result"])
    token = ApiToken.objects.create(user=owner, name="ci", prefix="dfd_xxxxxx", key_hash="b" * 64)
    secrets = {name: create_token(user, "access-test")[1] for name, user in
               (("owner", owner), ("other", other), ("staff", staff))}  # fmt: skip
    return {
        "users": {"other": other, "staff": staff, "owner": owner},
        "submission": submission,
        "result": result,
        "frame": frame,
        "detector": detector,
        "token": token,
        "secrets": secrets,
        "group": Group.objects.get_or_create(name="reviewer")[0],
    }


def kwargs_for(route, world):
    """URL arguments pointing at the owner's objects; unknown parameter names fail loudly."""
    submission, frame = world["submission"], world["frame"]
    model_objects = {
        "submission": submission.pk,
        "result": world["result"].pk,
        "frameimage": frame.pk,
        "detectormodel": world["detector"].pk,
        "apitoken": world["token"].pk,
        "user": world["users"]["owner"].pk,
        "group": world["group"].pk,
    }
    values = {
        "public_id": submission.public_id,
        "submission_id": submission.public_id,
        "result_id": world["result"].public_id,
        "frame_id": frame.pk,
        "kind": "crop",
        "token_id": world["token"].pk,
        "app_label": "detector",
        "uidb64": "MQ",
        "token": "set-password",
        "content_type_id": 1,
    }
    kwargs = {}
    for param in route.params:
        if param in ("object_id", "pk", "id"):
            model = next((m for m in model_objects if re.match(rf"^admin:[a-z]+_{m}_", route.name)), None)
            if route.name == "admin:view_on_site":
                kwargs[param] = str(submission.pk)
                continue
            if model is None and param == "pk" and "token" in route.name:
                model = "apitoken"
            if model not in model_objects:
                raise AssertionError(f"no test object for parameter {param!r} of URL {route.name!r}")
            kwargs[param] = str(model_objects[model]) if param == "object_id" else model_objects[model]
        elif param in values:
            kwargs[param] = values[param]
        else:
            raise AssertionError(
                f"URL {route.name!r} takes {param!r}, which this test does not know how to fill: "
                "add it to kwargs_for() and give the URL a rule in RULES"
            )
    return kwargs


def client_for(client, world, who):
    if who != "anonymous":
        client.force_login(world["users"][who])
    return client


def check_outcome(response, expected, who, url, settings):
    status = response.status_code
    if expected == LOGIN:
        login = reverse(settings.LOGIN_URL) if not settings.LOGIN_URL.startswith("/") else settings.LOGIN_URL
        location = response.get("Location", "")
        ok = status == 302 and location.split("?")[0] == login
        api_like = response.get("Content-Type", "").startswith("application/json") and status in (401, 403)
        assert ok or api_like, f"{who} on {url}: expected a redirect to {login}, got {status} {location}"
    elif expected == ADMIN_LOGIN:
        location = response.get("Location", "")
        assert status == 302 and location.split("?")[0] == reverse("admin:login"), (
            f"{who} on {url}: expected a redirect to the admin login, got {status} {location}"
        )
    else:
        assert status in expected, f"{who} on {url}: expected {sorted(expected)}, got {status}"


# --- the tests ----------------------------------------------------------------------------------


def test_every_routed_url_has_a_name_and_an_access_rule():
    routes = all_named_patterns()
    unnamed = [r.route for r in routes if not r.name]
    assert not unnamed, f"URL patterns without a name cannot be checked: {unnamed}"
    missing = sorted({r.name for r in routes if rule_for(r.name) is None})
    assert not missing, f"URLs without an access rule in tests/security/test_access_control.py: {missing}"


def test_every_rule_names_a_url_that_still_exists():
    names = {r.name for r in all_named_patterns()}
    stale = sorted(set(RULES) - names)
    assert not stale, f"RULES lists URLs that no longer exist: {stale}"


@pytest.mark.parametrize("who", ["anonymous", "other", "staff", "owner"])
def test_each_visitor_gets_exactly_what_the_rule_allows_on_every_url(client, world, settings, who):
    failures = []
    for route in all_named_patterns():
        rule = rule_for(route.name)
        if rule is None:
            continue  # reported by test_every_routed_url_has_a_name_and_an_access_rule
        url = reverse(route.name, kwargs=kwargs_for(route, world))
        visitor = client_for(client, world, who)
        headers = {}
        if route.name in API_NAMES and who != "anonymous":
            headers["HTTP_AUTHORIZATION"] = "Token " + world["secrets"][who]
        response = visitor.get(url, **headers)
        try:
            check_outcome(response, getattr(rule, who), who, f"{route.name} ({url})", settings)
        except AssertionError as exc:
            failures.append(str(exc))
        if who == "anonymous":
            client.logout()
    assert not failures, "\n".join(failures)


def test_a_random_public_id_is_404_even_for_its_would_be_owner(client, world):
    client.force_login(world["users"]["owner"])
    auth = {"HTTP_AUTHORIZATION": "Token " + world["secrets"]["owner"]}
    for route in all_named_patterns():
        if "public_id" not in route.params or route.name.startswith("admin:"):
            continue
        kwargs = kwargs_for(route, world)
        kwargs["public_id"] = uuid.uuid4()
        response = client.get(reverse(route.name, kwargs=kwargs), **auth)
        assert response.status_code in (404, 405), f"{route.name}: {response.status_code}"


def test_public_ids_are_random_uuid4_not_sequential(world):
    owner = world["users"]["owner"]
    ids = [Submission.objects.create(owner=owner).public_id for _ in range(5)]
    assert all(i.version == 4 for i in ids)
    assert len({i.int >> 64 for i in ids}) == 5  # not a counter: high bits differ too
    assert all(str(world["submission"].pk) != str(i) for i in ids)


def test_another_user_and_unprivileged_staff_cannot_delete_a_submission(client, world):
    submission = world["submission"]
    url = reverse("submission-delete", kwargs={"public_id": submission.public_id})
    for who in ("other", "staff"):
        client.force_login(world["users"][who])
        response = client.post(url)
        assert response.status_code == 404, f"{who}: {response.status_code}"
        assert Submission.objects.filter(pk=submission.pk).exists(), (
            f"{who} deleted someone else's submission"
        )
    response = client.delete(
        reverse("api-submission-detail", kwargs={"public_id": submission.public_id}),
        HTTP_AUTHORIZATION="Token " + world["secrets"]["other"],
    )
    assert response.status_code == 404
    assert Submission.objects.filter(pk=submission.pk).exists()


def test_lists_and_counts_never_show_another_users_submissions(client, world):
    submission = world["submission"]
    secret = str(submission.public_id)
    for who in ("other", "staff"):
        client.force_login(world["users"][who])
        page = client.get(reverse("submission-list"))
        assert page.status_code == 200
        body = page.content.decode()
        assert secret not in body and submission.original_name not in body, f"{who} sees the owner's upload"
        api = client.get(reverse("api-submission-list"), HTTP_AUTHORIZATION="Token " + world["secrets"][who])
        assert api.status_code == 200
        data = api.json()
        assert secret not in api.content.decode()
        count = data.get("count", len(data.get("results", [])))
        assert count == 0, f"{who} is told about {count} submissions it does not own"
    client.force_login(world["users"]["owner"])
    assert secret in client.get(reverse("submission-list")).content.decode()
