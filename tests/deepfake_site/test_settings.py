import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from deepfake_site import env
from tests.conftest import ROOT

PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "x" * 64 + "-a-long-random-production-secret",
    "ALLOWED_HOSTS": "detector.example.org",
    "DATABASE_URL": "postgresql://deepfake@db.internal:5432/deepfake",
}


def run_manage(*args, extra_env=None, drop=()):
    environment = {k: v for k, v in os.environ.items() if k not in drop}
    environment.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def test_env_bool_refuses_a_value_that_is_not_a_boolean(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        env.env_bool("SOME_FLAG")


def test_env_bool_reads_common_spellings(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "Yes")
    assert env.env_bool("SOME_FLAG") is True
    monkeypatch.setenv("SOME_FLAG", "0")
    assert env.env_bool("SOME_FLAG", True) is False


def test_env_int_refuses_words_and_values_below_the_minimum(monkeypatch):
    monkeypatch.setenv("SOME_NUMBER", "ten")
    with pytest.raises(ImproperlyConfigured, match="whole number"):
        env.env_int("SOME_NUMBER", 1)
    monkeypatch.setenv("SOME_NUMBER", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env.env_int("SOME_NUMBER", 5, minimum=1)


def test_env_choice_accepts_listed_values_and_refuses_others(monkeypatch):
    monkeypatch.setenv("SOME_CHOICE", " Exact ")
    assert env.env_choice("SOME_CHOICE", "", ("fast", "exact")) == "exact"
    monkeypatch.setenv("SOME_CHOICE", "precise")
    with pytest.raises(ImproperlyConfigured, match="one of fast, exact"):
        env.env_choice("SOME_CHOICE", "", ("fast", "exact"))
    monkeypatch.delenv("SOME_CHOICE")
    assert env.env_choice("SOME_CHOICE", "", ("fast", "exact")) == ""


def test_an_unknown_face_detector_stops_the_process_naming_the_variable():
    result = run_manage("check", extra_env={"DETECTOR_FACE_DETECTOR": "retinaface"})
    assert result.returncode != 0
    assert "DETECTOR_FACE_DETECTOR must be one of hog+mtcnn, hog, mtcnn, cnn" in result.stderr


def test_a_queued_resend_lease_that_is_not_a_number_of_seconds_stops_the_process():
    result = run_manage("check", extra_env={"QUEUED_RESEND_SECONDS": "2m"})
    assert result.returncode != 0
    assert "QUEUED_RESEND_SECONDS must be a whole number, got '2m'" in result.stderr


def test_database_url_switches_to_postgresql():
    db = env.database_from_url("postgresql://user:p%40ss@db.example:6543/deepfake?sslmode=require")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == (
        "deepfake",
        "user",
        "p@ss",
        "db.example",
        "6543",
    )
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_database_url_with_an_unknown_scheme_fails_loudly():
    with pytest.raises(ImproperlyConfigured, match="mysql"):
        env.database_from_url("mysql://root@localhost/db")


def test_cache_url_picks_redis_memory_or_fails_loudly():
    assert env.cache_from_url("redis://127.0.0.1:6379/1")["BACKEND"].endswith("RedisCache")
    assert env.cache_from_url("")["BACKEND"].endswith("LocMemCache")
    with pytest.raises(ImproperlyConfigured, match="CACHE_URL"):
        env.cache_from_url("memcached://127.0.0.1:11211")


def test_production_without_secret_key_refuses_to_start():
    extra = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    result = run_manage("check", extra_env=extra, drop=("SECRET_KEY",))
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_without_allowed_hosts_refuses_to_start():
    extra = {k: v for k, v in PRODUCTION_ENV.items() if k != "ALLOWED_HOSTS"}
    result = run_manage("check", extra_env=extra, drop=("ALLOWED_HOSTS",))
    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr


def test_production_refuses_the_fault_tests_stage_delay():
    result = run_manage("check", extra_env={**PRODUCTION_ENV, "DETECTOR_TEST_STAGE_DELAY": "2"})
    assert result.returncode != 0
    assert "DETECTOR_TEST_STAGE_DELAY is for tests" in result.stderr


def test_production_settings_pass_the_deploy_check_with_no_warnings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", extra_env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_development_defaults_keep_debug_off_unless_asked(settings):
    from deepfake_site import settings as project_settings

    assert project_settings.DEBUG is False or os.environ.get("DJANGO_DEBUG")
    assert project_settings.CELERY_BROKER_URL.startswith(("redis://", "filesystem://"))


def test_the_default_detector_is_the_one_the_command_line_uses():
    from ml_core.constants import DEFAULT_CHECKPOINT

    code = "from django.conf import settings; print(settings.DETECTOR_DEFAULT_CHECKPOINT)"
    result = run_manage("shell", "--no-imports", "-c", code, drop=("DETECTOR_DEFAULT_CHECKPOINT",))
    assert result.stdout.strip() == str(DEFAULT_CHECKPOINT), result.stderr


def test_ml_core_imports_without_django():
    code = (
        "import sys, importlib, pkgutil, ml_core\n"
        "names = [m.name for m in pkgutil.walk_packages(ml_core.__path__, 'ml_core.')]\n"
        "assert 'ml_core.training.run' in names and 'ml_core.cli.train' in names, names\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
