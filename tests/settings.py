"""Settings for the test suite: PostgreSQL and Redis, as in production."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fcdash")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
# One queue per test run, so runs side by side never take each other's
# messages. Worker processes that the tests start inherit it.
os.environ.setdefault("FCDASH_QUEUE", f"fcdash-test-{os.getpid()}")

from fcdash.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Look static files up per request, so no collectstatic folder is needed.
WHITENOISE_AUTOREFRESH = True
SECRET_KEY = "fcdash-test-suite-key"
