"""Django settings for fcdash, read from environment variables.

With nothing set, fcdash runs on SQLite and kombu's filesystem broker under
./var, so a fresh machine needs no server. Production sets DATABASE_URL
(PostgreSQL) and CELERY_BROKER_URL (Redis or RabbitMQ).
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("FCDASH_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
env.smart_cast = False

DEBUG = env.bool("DEBUG", default=False)
# The default is for the zero-setup run command; a system check warns when
# it is used with a server database.
SECRET_KEY = env.str("SECRET_KEY", default="insecure-fcdash-development-key")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "django_htmx",
    "template_partials",
    "invocations",
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
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "fcdash.urls"
WSGI_APPLICATION = "fcdash.wsgi.application"

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
                "invocations.context_processors.open_alerts",
            ],
        },
    },
]

# Database: PostgreSQL in production and tests, SQLite as the zero-setup
# default. SQLite runs in WAL mode with immediate transactions and a busy
# timeout, so the web process and the worker can both write.
DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'fcdash.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# collectstatic's target. It is created here because WhiteNoise warns about
# a missing folder even while it serves files from the finders.
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve static files from the finders so the run command needs no collectstatic.
WHITENOISE_USE_FINDERS = True

# The largest request body Django reads: FC's 32 MB sync payload limit plus
# room for headers of a multipart form.
DATA_UPLOAD_MAX_MEMORY_SIZE = 32 * 1024 * 1024 + 64 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "fcdash API",
    "DESCRIPTION": "Invoke functions, follow their retries and stop or retry them.",
    "VERSION": "1",
}

# Celery. The broker defaults to kombu's filesystem transport, which works
# across processes without a server. Its polling interval bounds how late a
# retry handed over at the last moment starts, so the engine hands retries
# over early and lets the worker hold them to their ETA.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT = "fcdash.broker:Transport"
    BROKER_DIR = VAR_DIR / "broker"
    for folder in ("processed", "control"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": env.float("FCDASH_BROKER_POLLING_INTERVAL", default=0.05),
    }
CELERY_TASK_DEFAULT_QUEUE = env.str("FCDASH_QUEUE", default="fcdash")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int(
    "FCDASH_WORKER_PREFETCH_MULTIPLIER", default=1
)
CELERY_WORKER_POOL = env.str("FCDASH_WORKER_POOL", default="threads")
CELERY_WORKER_CONCURRENCY = env.int("FCDASH_WORKER_CONCURRENCY", default=8)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Retry engine. The beat job runs every FCDASH_DISPATCH_INTERVAL_S seconds
# and hands over retries due within FCDASH_DISPATCH_LOOKAHEAD_S seconds. A
# retry handed over but not started FCDASH_REDISPATCH_AFTER_S seconds later
# is handed over again (the broker lost it); the attempt-number claim makes
# the duplicate harmless.
FCDASH_DISPATCH_INTERVAL_S = env.float("FCDASH_DISPATCH_INTERVAL_S", default=1.0)
FCDASH_DISPATCH_LOOKAHEAD_S = env.float("FCDASH_DISPATCH_LOOKAHEAD_S", default=5.0)
FCDASH_REDISPATCH_AFTER_S = env.float("FCDASH_REDISPATCH_AFTER_S", default=15.0)
# Retry requests for one invocation within this many seconds of the last
# one are repeats (double clicks, re-sent requests, a second operator) and
# make no further attempt.
FCDASH_RETRY_REPEAT_WINDOW_S = env.float("FCDASH_RETRY_REPEAT_WINDOW_S", default=5.0)
# A running attempt whose worker died is recovered once its lease expires:
# the function's timeout plus this grace.
FCDASH_LEASE_GRACE_S = env.float("FCDASH_LEASE_GRACE_S", default=30.0)
# Largest response body kept on an attempt as a preview.
FCDASH_RESPONSE_PREVIEW_BYTES = env.int("FCDASH_RESPONSE_PREVIEW_BYTES", default=4096)
# Payload limits, as on FC.
FCDASH_MAX_SYNC_PAYLOAD_BYTES = 32 * 1024 * 1024
FCDASH_MAX_ASYNC_PAYLOAD_BYTES = 128 * 1024

# Quota alerts. A region is near its quota when its running attempts reach
# this share of it. An alert resolves once its condition has been clear for
# FCDASH_ALERT_CLEAR_AFTER_S seconds.
FCDASH_ALERT_NEAR_QUOTA_SHARE = env.float("FCDASH_ALERT_NEAR_QUOTA_SHARE", default=0.8)
FCDASH_ALERT_CLEAR_AFTER_S = env.float("FCDASH_ALERT_CLEAR_AFTER_S", default=60.0)
# Alert notification targets: a JSON webhook and email addresses.
FCDASH_ALERT_WEBHOOK_URL = env.str("FCDASH_ALERT_WEBHOOK_URL", default="")
FCDASH_ALERT_EMAILS = env.list("FCDASH_ALERT_EMAILS", default=[])
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="fcdash@localhost")

# Prices for the billing page's cost estimate; unset, no money is shown.
FCDASH_PRICE_PER_GB_SECOND = env.str("FCDASH_PRICE_PER_GB_SECOND", default=None)
FCDASH_PRICE_PER_MILLION_INVOCATIONS = env.str(
    "FCDASH_PRICE_PER_MILLION_INVOCATIONS", default=None
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # One line per task received and finished, and per beat tick, would
        # bury the engine's own log lines: the beat job runs every second.
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.beat": {"level": "WARNING"},
    },
}
