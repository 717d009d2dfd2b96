"""Every setting of Kequip, read from the environment."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("KEQUIP_INSTANCE_DIR", ROOT / "instance"))


def _flag(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(int(default))).lower() in {"1", "true", "yes", "on"}


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY")  # None: generated once and kept in instance/
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'kequip.sqlite'}")
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}  # connections idle for a while are pinged before use: core.db._ping_if_idle
    DOMAINS: tuple[str, ...] = ("marketplace", "vouchers", "monitoring")  # domain packages, each with init_app(app)
    DEBUG = _flag("FLASK_DEBUG")

    # Sessions and forms
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _flag("SESSION_COOKIE_SECURE")
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    # REMEMBER_COOKIE_SECURE follows SESSION_COOKIE_SECURE (core.security)
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", 11 * 1024 * 1024))

    # Languages and time
    LANGUAGES = ("zh_CN", "en")
    BABEL_DEFAULT_LOCALE = "zh_CN"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    BABEL_TRANSLATION_DIRECTORIES = str(ROOT / "translations")

    # Bootstrap assets come from our own server
    BOOTSTRAP_SERVE_LOCAL = True

    # Rate limits: "kequipdb://" keeps the counters in our database, shared by every worker
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "kequipdb://")
    # Log-in failures (core.ratelimit), each window starting at its first failure: per account and
    # address, and a larger number per address alone; an account is never locked for other addresses
    LOGIN_FAILURE_LIMIT = os.environ.get("LOGIN_FAILURE_LIMIT", "5 per 15 minutes")
    LOGIN_ADDRESS_FAILURE_LIMIT = os.environ.get("LOGIN_ADDRESS_FAILURE_LIMIT", "50 per hour")
    # Requests for a password-reset mail, per account (its mailbox) and per address
    PASSWORD_RESET_ACCOUNT_LIMIT = os.environ.get("PASSWORD_RESET_ACCOUNT_LIMIT", "5 per hour")
    PASSWORD_RESET_ADDRESS_LIMIT = os.environ.get("PASSWORD_RESET_ADDRESS_LIMIT", "20 per hour")
    # How many reverse proxies in front of the app to trust for X-Forwarded-For/-Proto (0: none)
    PROXY_FIX = int(os.environ.get("PROXY_FIX", 0))

    # Accounts
    PASSWORD_RESET_TTL_MINUTES = int(os.environ.get("PASSWORD_RESET_TTL_MINUTES", 60))
    API_TOKEN_TTL_DAYS = int(os.environ.get("API_TOKEN_TTL_DAYS", 30))

    # Mail: written to the outbox, sent by the send_outbox job
    MAIL_SERVER = os.environ.get("MAIL_SERVER", "127.0.0.1")
    MAIL_PORT = int(os.environ.get("MAIL_PORT", 8025))
    MAIL_USE_TLS = _flag("MAIL_USE_TLS")
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD")
    MAIL_SENDER = os.environ.get("MAIL_SENDER", "Kequip <noreply@kequip.test>")
    MAIL_MAX_ATTEMPTS = int(os.environ.get("MAIL_MAX_ATTEMPTS", 5))
    # Development only: the Maildir the local mail catcher writes (`make run`), read on /dev/mail
    DEV_MAILDIR = os.environ.get("DEV_MAILDIR")
    # Links in mail are built from this, since jobs have no request
    PUBLIC_URL = os.environ.get("PUBLIC_URL", f"http://127.0.0.1:{os.environ.get('PORT', '5000')}")

    # The instrument registry
    LARGE_INSTRUMENT_LINE_FEN = int(os.environ.get("LARGE_INSTRUMENT_LINE_FEN", 300_000_00))  # 300,000 yuan
    UPLOAD_DIR = os.environ.get("UPLOAD_DIR", str(INSTANCE_DIR / "uploads"))  # may be a shared volume
    # The XLSX import of instruments: a file beyond any of these is refused before the work it bounds
    IMPORT_MAX_BYTES = int(os.environ.get("IMPORT_MAX_BYTES", 10 * 1024 * 1024))
    IMPORT_MAX_UNPACKED_BYTES = int(os.environ.get("IMPORT_MAX_UNPACKED_BYTES", 40 * 1024 * 1024))
    IMPORT_MAX_ROWS = int(os.environ.get("IMPORT_MAX_ROWS", 5_000))  # under the headers, empty rows included
    IMPORT_MAX_COLUMNS = int(os.environ.get("IMPORT_MAX_COLUMNS", 60))
    IMPORT_MAX_CELLS = int(os.environ.get("IMPORT_MAX_CELLS", 125_000))  # filled cells: every column of the template

    # The payment gateway: Stripe's HTTP API (localstripe in development and tests, `make payments`)
    STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "http://127.0.0.1:8420")
    STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "sk_test_kequip")
    STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "pk_test_kequip")
    # Stripe.js for the card field (https://js.stripe.com/v3/ with Stripe); None: the stand-in localstripe
    # serves at <STRIPE_API_BASE>/js.stripe.com/v3/
    STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL")
    # Every gateway call gives up after these (connecting, then waiting for each read): a hung gateway
    # holds a worker no longer, and the booker is told that nothing was charged
    PAYMENT_CONNECT_TIMEOUT_SECONDS = float(os.environ.get("PAYMENT_CONNECT_TIMEOUT_SECONDS", "3"))
    PAYMENT_READ_TIMEOUT_SECONDS = float(os.environ.get("PAYMENT_READ_TIMEOUT_SECONDS", "5"))
    # Tests only: the process dies at this named point (marketplace.payments.services.fault_point)
    FAULT_POINT = os.environ.get("KEQUIP_FAULT_POINT")

    # Jobs
    SCHEDULER_ENABLED = _flag("SCHEDULER_ENABLED", True)
    SCHEDULER_LOCK_FILE = os.environ.get("SCHEDULER_LOCK_FILE", str(INSTANCE_DIR / "scheduler.lock"))
    SCHEDULER_RETRY_SECONDS = int(os.environ.get("SCHEDULER_RETRY_SECONDS", 15))

    # The OpenAPI document (flask-smorest)
    API_TITLE = "Kequip API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret-key"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
    WTF_CSRF_ENABLED = False
    RATELIMIT_STORAGE_URI = "memory://"
    SCHEDULER_ENABLED = False
    PUBLIC_URL = "http://kequip.test"
    STRIPE_API_BASE = "http://127.0.0.1:8420"  # the tests point it at the localstripe they start
    STRIPE_JS_URL = None
    PAYMENT_CONNECT_TIMEOUT_SECONDS = 1.0
    PAYMENT_READ_TIMEOUT_SECONDS = 2.0
