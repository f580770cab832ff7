"""Settings for the deepfake detection service, read from the environment.

Development defaults just work (SQLite under var/, local Redis, media/ beside the
code). `DJANGO_ENV=production` demands real secrets and turns on every HTTPS and
cookie protection that `manage.py check --deploy` looks for. Every variable is
listed in the README.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from ml_core.constants import BOX_MODES, DEFAULT_CHECKPOINT, FACE_DETECTORS

from .env import (
    cache_from_url,
    database_from_url,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_str,
    sqlite_database,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

ENVIRONMENT = env_str("DJANGO_ENV", "development")
if ENVIRONMENT not in ("development", "production"):
    raise ImproperlyConfigured(f"DJANGO_ENV must be 'development' or 'production', got {ENVIRONMENT!r}.")
PRODUCTION = ENVIRONMENT == "production"

if PRODUCTION:
    SECRET_KEY = env_str("SECRET_KEY", required=True)
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must list the host names the service answers to.")
    DEBUG = env_bool("DJANGO_DEBUG", False)
    if DEBUG:
        raise ImproperlyConfigured("DJANGO_DEBUG must not be on when DJANGO_ENV=production.")
else:
    SECRET_KEY = env_str("SECRET_KEY", "django-insecure-development-only-key-do-not-deploy")
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
    DEBUG = env_bool("DJANGO_DEBUG", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "detector",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "deepfake_site.urls"
WSGI_APPLICATION = "deepfake_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": database_from_url(DATABASE_URL)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {"default": sqlite_database(VAR_DIR / "db.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "detector.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "submission-list"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# Static files: Bootstrap comes from the XStatic-Bootstrap package, so pages render with no internet.
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
try:
    import xstatic.pkg.bootstrap as _xstatic_bootstrap

    STATICFILES_DIRS.append(("bootstrap", _xstatic_bootstrap.BASE_DIR))
except ImportError as exc:  # pragma: no cover - install step missing
    raise ImproperlyConfigured("XStatic-Bootstrap is missing: run the install in the README.") from exc
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing

# Media is private: it is never served under a public URL; views check ownership and stream it.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = ""
STORAGES = {
    "default": {
        "BACKEND": env_str("MEDIA_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"),
        "OPTIONS": {},
    },
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        ),
    },
}
# Where private files are handed to nginx (X-Accel-Redirect); empty means Django streams them.
MEDIA_ACCEL_REDIRECT_PREFIX = env_str("MEDIA_ACCEL_REDIRECT_PREFIX", "")

# Uploads: bigger than this go to a temp file on disk, never into memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = env_str("FILE_UPLOAD_TEMP_DIR")
FILE_UPLOAD_PERMISSIONS = 0o640
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_MB", 200, minimum=1) * 1024 * 1024
UPLOAD_MAX_SECONDS = env_int("UPLOAD_MAX_SECONDS", 600, minimum=1)

# Links (detector/links): the media a link names is fetched by a job, then checked as an upload.
# Private, loopback and link-local addresses are refused unless this is on (tests, closed
# intranets); a public service must never reach its own network, so production refuses it.
LINK_ALLOW_PRIVATE_ADDRESSES = env_bool("LINK_ALLOW_PRIVATE_ADDRESSES", False)
if PRODUCTION and LINK_ALLOW_PRIVATE_ADDRESSES:
    raise ImproperlyConfigured("LINK_ALLOW_PRIVATE_ADDRESSES must not be on when DJANGO_ENV=production.")
# A fetch that receives nothing for this long is stopped; a whole fetch may take at most this long.
LINK_STALL_SECONDS = env_int("LINK_STALL_SECONDS", 30, minimum=1)
LINK_FETCH_SECONDS = env_int("LINK_FETCH_SECONDS", 600, minimum=5)
# Links one user may submit per hour.
LINK_RATE_LIMIT_PER_HOUR = env_int("LINK_RATE_LIMIT_PER_HOUR", 20, minimum=1)

# Detector
DETECTOR_UNCERTAIN_BAND = float(env_str("DETECTOR_UNCERTAIN_BAND", "0.1"))
DETECTOR_DEVICE = env_str("DETECTOR_DEVICE", "")  # empty: cuda when available, else cpu
DETECTOR_EXPLAIN = env_bool("DETECTOR_EXPLAIN", True)
# Face boxes: "" = what the active checkpoint asks for (reference checkpoints: exact, i.e. the
# boxes of full-resolution HOG they were trained on; ours: fast), or force "fast" / "exact".
DETECTOR_FACE_BOXES = env_choice("DETECTOR_FACE_BOXES", "", BOX_MODES)
# Face detector: "" = the one the active model was trained with (its crop recipe; the shipped one:
# HOG, then MTCNN where HOG sees nobody), or force one (e.g. "hog" on a slow CPU host: crops then
# differ from training, and each result records the override). Exact boxes always use HOG alone.
DETECTOR_FACE_DETECTOR = env_choice("DETECTOR_FACE_DETECTOR", "", FACE_DETECTORS)
# Fault tests only: each stage of a job waits this long, so a test can kill the worker mid-job.
try:
    DETECTOR_TEST_STAGE_DELAY = max(0.0, float(env_str("DETECTOR_TEST_STAGE_DELAY", "0")))
except ValueError as exc:
    raise ImproperlyConfigured("DETECTOR_TEST_STAGE_DELAY must be a number of seconds.") from exc
if PRODUCTION and DETECTOR_TEST_STAGE_DELAY:
    raise ImproperlyConfigured("DETECTOR_TEST_STAGE_DELAY is for tests; it must not be set in production.")
# A running job refreshes its heartbeat this often; a job whose heartbeat is older than the
# lease is presumed dead and may be taken over; a job that killed its worker this many times fails.
DETECTOR_HEARTBEAT_SECONDS = env_int("DETECTOR_HEARTBEAT_SECONDS", 10, minimum=1)
DETECTOR_LEASE_SECONDS = env_int("DETECTOR_LEASE_SECONDS", max(60, 6 * DETECTOR_HEARTBEAT_SECONDS), minimum=2)
DETECTOR_MAX_ATTEMPTS = env_int("DETECTOR_MAX_ATTEMPTS", 3, minimum=1)
# The detector shipped with the project (models/default); `manage.py install_detector --default`
# (run by `make run`) installs and activates it when no model is active. Empty: none.
DETECTOR_DEFAULT_CHECKPOINT = env_str("DETECTOR_DEFAULT_CHECKPOINT", str(DEFAULT_CHECKPOINT))
# Workers keep a local copy of each checkpoint here, keyed by SHA-256 (storage may be remote).
DETECTOR_CACHE_DIR = Path(env_str("DETECTOR_CACHE_DIR", str(VAR_DIR / "detector-cache")))

# Signed reports (detector/reports). The Ed25519 signing key: REPORT_SIGNING_KEY (a PEM private
# key, for deployments that hand out secrets through the environment), else a key created on first
# use in REPORT_SIGNING_KEY_DIR (mode 0600, outside the repository and media). The public keys,
# old ones included with their dates, are kept in that folder's public_keys.json.
REPORT_SIGNING_KEY = env_str("REPORT_SIGNING_KEY", "")
REPORT_SIGNING_KEY_DIR = Path(env_str("REPORT_SIGNING_KEY_DIR", str(VAR_DIR / "report-keys")))
# The software version a report names; empty: the git commit the code runs from.
REPORT_SOFTWARE_VERSION = env_str("REPORT_SOFTWARE_VERSION", "")
# Largest file the public "verify a report" page reads.
REPORT_VERIFY_MAX_BYTES = env_int("REPORT_VERIFY_MAX_MB", 20, minimum=1) * 1024 * 1024

# Django's cache, where the log-in throttle counts failures: Redis by default, so every web
# process shares one count; CACHE_URL="" keeps it in each process's memory.
CACHES = {"default": cache_from_url(os.environ.get("CACHE_URL", "redis://127.0.0.1:6379/1"))}

# Failed log-ins: this many per username and address lock that pair out for this long.
LOGIN_THROTTLE_ATTEMPTS = env_int("LOGIN_THROTTLE_ATTEMPTS", 5, minimum=1)
LOGIN_THROTTLE_SECONDS = env_int("LOGIN_THROTTLE_SECONDS", 15 * 60, minimum=1)

# Celery: long GPU jobs, as the Celery docs advise (late acks, prefetch 1, JSON only).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_GPU_QUEUE = env_str("CELERY_GPU_QUEUE", "gpu")
# Not Celery's task_time_limit: Celery would copy the *publisher's* limits into every message.
# deepfake_site/celery.py applies these inside each worker, so a worker's own environment rules.
TASK_HARD_TIME_LIMIT = env_int("CELERY_TASK_HARD_TIME_LIMIT", 1800, minimum=10)
TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", TASK_HARD_TIME_LIMIT - 120, minimum=5)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_int("CELERY_WORKER_MAX_TASKS_PER_CHILD", 50, minimum=1)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("CELERY_WORKER_MAX_MEMORY_PER_CHILD_KB", 8_000_000)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_DEFAULT_QUEUE", "celery")
# Fetching a link's media (detector.links) waits on the network, not the GPU: its own queue.
CELERY_FETCH_QUEUE = env_str("CELERY_FETCH_QUEUE", "fetch")
CELERY_TASK_ROUTES = {
    "detector.tasks.analyze_submission": {"queue": CELERY_GPU_QUEUE},
    "detector.tasks.fetch_link": {"queue": CELERY_FETCH_QUEUE},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
# A queued job sent longer ago than this is re-sent whatever the broker holds (a queue that never
# empties); a running one is judged by its heartbeat lease instead (DETECTOR_LEASE_SECONDS).
STUCK_AFTER_SECONDS = env_int("STUCK_AFTER_SECONDS", TASK_HARD_TIME_LIMIT + 300, minimum=10)
# A queued job sent longer ago than this, while the broker's job queue is empty (Redis restarted
# empty), lost its message: the recovery re-sends it. Beat runs the recovery every 30 s.
QUEUED_RESEND_SECONDS = env_int("QUEUED_RESEND_SECONDS", 120, minimum=10)
# Files under a submission's folder that no row references (an attempt killed while saving, an
# upload whose row was never saved) are removed by the hourly sweep once older than this. It must
# outlast a job: a job writes its images before the rows that reference them commit.
MEDIA_ORPHAN_GRACE_SECONDS = env_int(
    "MEDIA_ORPHAN_GRACE_SECONDS", max(6 * 3600, TASK_HARD_TIME_LIMIT), minimum=TASK_HARD_TIME_LIMIT
)
CELERY_BEAT_SCHEDULE = {
    # Expires: runs a busy worker could not start in time are dropped, not piled up.
    "requeue-stuck-submissions": {
        "task": "detector.tasks.requeue_stuck",
        "schedule": 30.0,
        "options": {"expires": 30},
    },
    "sweep-orphan-media": {"task": "detector.tasks.sweep_media", "schedule": 3600.0},
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Embedded broker for machines without Redis: messages are files in one folder.
    _broker_dir = Path(env_str("CELERY_FILESYSTEM_BROKER_DIR", str(VAR_DIR / "broker")))
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Redis re-delivers an unacknowledged job after this long: it must exceed the hard limit.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": TASK_HARD_TIME_LIMIT + 1800,
        "socket_connect_timeout": 3,
        "socket_timeout": 10,
    }

# Email: console unless SMTP is configured.
EMAIL_HOST = env_str("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "deepfake-detector@localhost")

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Security headers and cookies (check --deploy is clean in production).
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
