"""Shouhu settings. Everything that differs between machines comes from the environment.

See `.env.example` for the variables. Demo mode (`SHOUHU_DEMO=1`) is what `make run` uses: it
allows the demo data key, the demo secret key and the demo accounts, and says so on every page.
Outside demo mode a missing secret is a start-up error, never a silent default.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import dj_database_url

from shouhu.lib.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("SHOUHU_VAR_DIR", str(BASE_DIR / "var")))

DEMO_MODE = env_bool("SHOUHU_DEMO", False)
DEBUG = env_bool("SHOUHU_DEBUG", False)
TESTING = "pytest" in sys.modules or env_bool("SHOUHU_TESTING", False)

_DEMO_SECRET = "demo-only-secret-key-do-not-use-in-production-shouhu-2026"
SECRET_KEY = env_str("SHOUHU_SECRET_KEY", _DEMO_SECRET if (DEMO_MODE or TESTING) else None)

# Key for personal data at rest (base64 of 32 random bytes). Only demo mode and tests may fall
# back to the published demo key; `shouhu.lib.crypto` refuses it elsewhere.
DATA_KEY = env_str("SHOUHU_DATA_KEY", "" if (DEMO_MODE or TESTING) else None)

ALLOWED_HOSTS = env_list("SHOUHU_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("SHOUHU_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "shouhu.org.admin_site.ShouhuAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",  # serves the API docs' Swagger UI from its static files (else it loads it from a CDN)
    "csp",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "simple_history",
    "huey.contrib.djhuey",
    "shouhu.audit",
    "shouhu.org",
    "shouhu.registry",
    "shouhu.policy",
    "shouhu.visits",
    "shouhu.safeguarding",
    "shouhu.tasks",
    "shouhu.cases",
    "shouhu.intake",
    "shouhu.notify",
    "shouhu.api",
]

MIDDLEWARE = [
    "shouhu.org.middleware.DatabaseBusyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "shouhu.org.middleware.SessionTimeoutMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "shouhu.org.middleware.AccessMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "shouhu.urls"
WSGI_APPLICATION = "shouhu.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "shouhu" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "shouhu.org.context_processors.shouhu",
            ],
        },
    },
]

# Database: PostgreSQL when SHOUHU_DATABASE_URL is set, else an embedded SQLite file.
_database_url = env_str("SHOUHU_DATABASE_URL", "")
DATABASES: dict[str, Any]
if _database_url:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
    # Parameters travel apart from the SQL (psycopg's server-side binding), not quoted into its
    # text: a 20 MB kept survey file is sent as itself instead of a hex copy, a quoted copy and a
    # query string holding both (8x its size in the server process).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("server_side_binding", True)
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "shouhu.sqlite3",
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "org.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "shouhu.org.backends.ShouhuBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login hardening (django-axes): lock the username+IP pair after 5 failures for 30 minutes.
AXES_FAILURE_LIMIT = env_int("SHOUHU_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("SHOUHU_LOGIN_COOLOFF_MINUTES", 30) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
AXES_ENABLED = env_bool("SHOUHU_AXES_ENABLED", True)

# Second factor (TOTP) for privileged roles; users who enrolled one always use it.
SHOUHU_MFA_REQUIRED = env_bool("SHOUHU_MFA_REQUIRED", not (DEMO_MODE or TESTING))
OTP_TOTP_ISSUER = "守护 Shouhu"

# Sessions: idle timeout and absolute lifetime (shouhu.org.middleware.SessionTimeoutMiddleware).
# Reference data (regions, station jurisdictions, policy parameters) memoised per process on hot
# paths, at most this stale in another process (shouhu/lib/refcache.py); 0 turns it off.
SHOUHU_REFCACHE_SECONDS = env_int("SHOUHU_REFCACHE_SECONDS", 30)
SHOUHU_SESSION_IDLE_SECONDS = env_int("SHOUHU_SESSION_IDLE_MINUTES", 30) * 60
SHOUHU_SESSION_ABSOLUTE_SECONDS = env_int("SHOUHU_SESSION_ABSOLUTE_HOURS", 12) * 3600
SESSION_ENGINE = "shouhu.lib.sessions"  # the database store, refusing malformed keys (a NUL byte)
SESSION_COOKIE_AGE = SHOUHU_SESSION_ABSOLUTE_SECONDS
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"

# Behind TLS (production) every cookie is Secure and HSTS is on.
SECURE = env_bool("SHOUHU_SECURE", not (DEMO_MODE or DEBUG or TESTING))
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SECURE_SSL_REDIRECT = env_bool("SHOUHU_SSL_REDIRECT", SECURE)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("SHOUHU_BEHIND_PROXY", False) else None
SECURE_HSTS_SECONDS = 31536000 if SECURE else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

LANGUAGE_CODE = "zh-hans"
# Every user-facing string goes through gettext with Chinese msgids; English joins this list (and
# the language menu appears) once its catalogue exists, so a browser asking for English never gets
# a page marked `lang="en"` that is in fact Chinese.
LANGUAGES = [("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "shouhu" / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "shouhu" / "static"]

DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("SHOUHU_LOG_LEVEL", "INFO")},
    # Request logs carry URLs only; no personal data ever travels in a URL.
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},
    },  # WeasyPrint logs each rendering step at INFO
}

SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
SIMPLE_HISTORY_REVERT_DISABLED = True
# No index on history_date: the history is read by record (its `id`, or `child_id`/`member_id`),
# never by date alone, and each index costs every history row written (an import of 100,000
# children writes about 630,000).
SIMPLE_HISTORY_DATE_INDEX = False

NINJA_PAGINATION_PER_PAGE = 50

# Background and periodic work (huey): SQLite storage by default, Redis when SHOUHU_REDIS_URL is set.
# Schedules are in Asia/Shanghai (utc=False). Run the consumer with `manage.py run_huey -w 2 -k thread`.
# Survey imports: files above this size are checked and committed in the background (huey);
# a background import with no heartbeat for this long is reported as interrupted (restartable).
SHOUHU_IMPORT_SYNC_MAX_BYTES = env_int("SHOUHU_IMPORT_SYNC_MAX_BYTES", 1024 * 1024)
SHOUHU_IMPORT_STALE_SECONDS = env_int("SHOUHU_IMPORT_STALE_SECONDS", 120)
# A file of at least this many rows is validated by forked processes while it is read and written
# (shouhu/intake/pipeline.py): this many (-1: the CPUs less one, at most 4; 0: never).
SHOUHU_IMPORT_PROCESSES = env_int("SHOUHU_IMPORT_PROCESSES", -1)
SHOUHU_IMPORT_PARALLEL_MIN_ROWS = env_int("SHOUHU_IMPORT_PARALLEL_MIN_ROWS", 2000)
# Undoing an import of more children than this, and writing a ledger list longer than this, run
# in the background too (shouhu/intake/jobs.py, shouhu/intake/exports.py).
SHOUHU_IMPORT_SYNC_MAX_UNDO = env_int("SHOUHU_IMPORT_SYNC_MAX_UNDO", 2000)
SHOUHU_EXPORT_SYNC_MAX_ROWS = env_int("SHOUHU_EXPORT_SYNC_MAX_ROWS", 20000)

_redis_url = env_str("SHOUHU_REDIS_URL", "")
HUEY = {
    "name": "shouhu",
    "utc": False,
    "immediate": TESTING,
    "results": True,
    **(
        {"huey_class": "huey.RedisHuey", "connection": {"url": _redis_url}}
        if _redis_url
        else {"huey_class": "huey.SqliteHuey", "filename": str(VAR_DIR / "huey.sqlite3")}
    ),
}
if not _redis_url:
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # the queue's file, on PostgreSQL too

# The cache every server process shares: the public entrance's rate limits and used challenges
# (shouhu.safeguarding.public) must count across processes and servers. Redis when SHOUHU_REDIS_URL
# is set (the queue's server; needs the `redis` package), else a table in the database, created by
# `migrate`, whose `incr` is atomic (shouhu.safeguarding.cache). Nothing else is cached.
CACHES: dict[str, dict[str, Any]]
if _redis_url:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _redis_url,
            "KEY_PREFIX": "shouhu",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "shouhu.safeguarding.cache.AtomicDatabaseCache",
            "LOCATION": "shouhu_cache",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }

# Notifications (shouhu.notify, docs/notifications.md): the channels besides the in-app inbox, by
# name ("inbox", "log", "sms", "email", "wecom"); each enabled channel reads its credentials from
# the environment and fails `manage.py check` without them. Links sent out start with SHOUHU_SITE_URL.
SHOUHU_NOTIFY_CHANNELS = env_list("SHOUHU_NOTIFY_CHANNELS", ["inbox", "log"])
SHOUHU_NOTIFY_MAX_ATTEMPTS = env_int("SHOUHU_NOTIFY_MAX_ATTEMPTS", 20)
SHOUHU_SITE_URL = env_str("SHOUHU_SITE_URL", "")
