"""Settings, read from the environment only (see .env.example for every variable).

Defaults are the embedded ones `make run` uses: SQLite in instance/, the Redis
that `make run` starts, and the bundled local model when no LLM is configured.
In production (FLASK_ENV/COPYDECK_ENV=production) a missing SECRET_KEY fails loudly.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{INSTANCE / 'copydeck.db'}"
    # Heroku-style URLs and plain postgresql:// go through psycopg 3.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def load() -> dict:
    """Build the Flask config mapping from the environment."""
    env = os.environ.get("COPYDECK_ENV", "development")
    secret = os.environ.get("SECRET_KEY")
    if not secret:
        if env == "production":
            raise RuntimeError("SECRET_KEY must be set when COPYDECK_ENV=production")
        secret = "dev-insecure-secret-change-me"
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    openai_base_url = os.environ.get("OPENAI_BASE_URL") or None
    openai_key = os.environ.get("OPENAI_API_KEY") or None
    return {
        "ENV_NAME": env,
        "SECRET_KEY": secret,
        "SQLALCHEMY_DATABASE_URI": _database_url(),
        # A pool per process as large as its busiest moment: gunicorn threads (WEB_THREADS) all querying at once.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_size": _int("DB_POOL_SIZE", 20),
                                      "max_overflow": _int("DB_MAX_OVERFLOW", 60), "pool_timeout": 30},
        "REDIS_URL": redis_url,
        "RQ_QUEUE": os.environ.get("RQ_QUEUE", "generations"),
        "JOB_TIMEOUT": _int("JOB_TIMEOUT", 180),
        # The outbox (app/outbox): jobs recorded with their transaction, swept when an enqueue failed.
        "OUTBOX_SWEEP_GRACE": _int("OUTBOX_SWEEP_GRACE", 30),
        "GENERATION_QUEUE_DEADLINE": _int("GENERATION_QUEUE_DEADLINE", 900),
        "MAINTENANCE_INTERVAL": _float("MAINTENANCE_INTERVAL", 15.0),
        # LLM: one code path for OpenAI, compatible servers and the local model.
        "OPENAI_API_KEY": openai_key,
        "OPENAI_BASE_URL": openai_base_url,
        "OPENAI_MODEL": os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
        "LLM_LOCAL_DRAFT": _bool("LLM_LOCAL_DRAFT"),
        "LLM_REQUEST_TIMEOUT": _float("LLM_REQUEST_TIMEOUT", 30.0),
        "LLM_MAX_ATTEMPTS": _int("LLM_MAX_ATTEMPTS", 3),
        "LLM_DEADLINE": _float("LLM_DEADLINE", 120.0),
        "LLM_BACKOFF": _float("LLM_BACKOFF", 1.0),
        "LLM_MAX_TOKENS": _int("LLM_MAX_TOKENS", 800),
        # Quota
        "FREE_MONTHLY_GENERATIONS": _int("FREE_MONTHLY_GENERATIONS", 20),
        "INVITATION_DAYS": _int("INVITATION_DAYS", 7),
        # Billing (Stripe). Without STRIPE_SECRET_KEY billing is off and operators size workspaces by CLI.
        "STRIPE_SECRET_KEY": os.environ.get("STRIPE_SECRET_KEY") or None,
        "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET") or None,
        "STRIPE_API_BASE": os.environ.get("STRIPE_API_BASE") or None,
        "STRIPE_PRICE_PRO": os.environ.get("STRIPE_PRICE_PRO") or None,
        "STRIPE_PRICE_BUSINESS": os.environ.get("STRIPE_PRICE_BUSINESS") or None,
        "BILLING_GRACE_DAYS": _int("BILLING_GRACE_DAYS", 7),
        # Mail
        "MAIL_FROM": os.environ.get("MAIL_FROM", "Copydeck <no-reply@copydeck.app>"),
        "SMTP_HOST": os.environ.get("SMTP_HOST") or None,
        "SMTP_PORT": _int("SMTP_PORT", 587),
        "SMTP_USERNAME": os.environ.get("SMTP_USERNAME") or None,
        "SMTP_PASSWORD": os.environ.get("SMTP_PASSWORD") or None,
        "SMTP_STARTTLS": _bool("SMTP_STARTTLS", True),
        "MAIL_OUTBOX": os.environ.get("MAIL_OUTBOX") or str(INSTANCE / "outbox"),
        "PASSWORD_RESET_MAX_AGE": _int("PASSWORD_RESET_MAX_AGE", 3600),
        # Web
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI") or redis_url,
        "RATELIMIT_HEADERS_ENABLED": True,
        # Redis down: limits keep working per process instead of failing every request.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "SSE_BLOCK_MS": _int("SSE_BLOCK_MS", 15000),
        "STREAM_TTL_SECONDS": _int("STREAM_TTL_SECONDS", 3600),
        "HISTORY_PAGE_SIZE": _int("HISTORY_PAGE_SIZE", 20),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", env == "production"),
        "WTF_CSRF_TIME_LIMIT": None,
    }
