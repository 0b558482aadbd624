"""Settings, read from the environment only (see .env.example for every variable).

Defaults are the embedded ones `make run` uses: SQLite in instance/, the Redis
that `make run` starts, and the bundled local model when no LLM is configured.
Every value is parsed here, once, by the typed helpers below: a malformed value
stops start-up with a `ConfigError` that names the variable. In production
(COPYDECK_ENV=production) SECRET_KEY, DATABASE_URL and REDIS_URL are required:
falling back to a dev secret, SQLite or a localhost Redis there would be silent
data loss or a forgeable session, so start-up refuses and names what is missing.
"""
from __future__ import annotations

import os
from datetime import timedelta
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"
ENVIRONMENTS = ("development", "production")
REQUIRED_IN_PRODUCTION = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL")
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


def _raw(name: str) -> str | None:
    """The variable's value, or None when unset or empty."""
    value = os.environ.get(name)
    return None if value is None or value.strip() == "" else value


def _bool(name: str, default: bool = False) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.strip().lower() in TRUE:
        return True
    if value.strip().lower() in FALSE:
        return False
    raise ConfigError(f"{name} must be true or false (1/0, yes/no, on/off), not {value!r}")


def _int(name: str, default: int, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {number}")
    return number


def _float(name: str, default: float) -> float:
    value = _raw(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {value!r}") from None


def _str(name: str, default: str | None = None) -> str | None:
    value = _raw(name)
    return default if value is None else value


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _str(name, default)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _database_url() -> str:
    url = _str("DATABASE_URL") or f"sqlite:///{INSTANCE / 'copydeck.db'}"
    # Heroku-style URLs and plain postgresql:// go through psycopg 3.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _require_production_settings(env: str) -> None:
    """Production never falls back to the embedded defaults: name every missing variable."""
    if env != "production":
        return
    missing = [name for name in REQUIRED_IN_PRODUCTION if _raw(name) is None]
    if missing:
        raise ConfigError(f"COPYDECK_ENV=production needs {', '.join(missing)}: "
                          f"{'it is' if len(missing) == 1 else 'they are'} not set (see .env.example)")


def _development_secret() -> str:
    """A random SECRET_KEY made once into instance/secret_key and reused, so a development
    install never signs sessions with a key that is public in the source.

    Written to a temporary file and hard-linked into place: the web and worker processes
    start together, and whichever links first wins; the others read its key.
    """
    path = INSTANCE / "secret_key"
    if not path.exists():
        INSTANCE.mkdir(parents=True, exist_ok=True)
        tmp = INSTANCE / f".secret_key.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def load() -> dict:
    """Build the Flask config mapping from the environment."""
    env = _choice("COPYDECK_ENV", "development", ENVIRONMENTS)
    production = env == "production"
    _require_production_settings(env)
    secret = _str("SECRET_KEY") or _development_secret()
    redis_url = _str("REDIS_URL", "redis://127.0.0.1:6379/0")
    openai_base_url = _str("OPENAI_BASE_URL")
    openai_key = _str("OPENAI_API_KEY")
    database_url = _database_url()
    # Connections per process. A server database counts every process's pool against its
    # max_connections (PostgreSQL: 100), so threads share a few (held only while they query);
    # SQLite's connections cost nothing, and under its write lock more threads wait holding one.
    pool_size, overflow = (20, 60) if database_url.startswith("sqlite") else (10, 5)
    return {
        "ENV_NAME": env,
        "SECRET_KEY": secret,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_size": _int("DB_POOL_SIZE", pool_size),
                                      "max_overflow": _int("DB_MAX_OVERFLOW", overflow), "pool_timeout": 30},
        "REDIS_URL": redis_url,
        "RQ_QUEUE": os.environ.get("RQ_QUEUE", "generations"),
        "JOB_TIMEOUT": _int("JOB_TIMEOUT", 180),
        # Bulk runs (app/bulk): their rows' own queue, taken after RQ_QUEUE; rows in flight per workspace.
        "BULK_QUEUE": os.environ.get("BULK_QUEUE", "bulk"),
        "BULK_CONCURRENCY": _int("BULK_CONCURRENCY", 4),
        # An upload that is never started is deleted (with its file) after this many hours.
        "BULK_DRAFT_HOURS": _int("BULK_DRAFT_HOURS", 24),
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
        # Characters kept per variant; longer model output is cut there and flagged.
        "LLM_MAX_OUTPUT_CHARS": _int("LLM_MAX_OUTPUT_CHARS", 20000),
        # Structured output for list templates: auto | openai (json_schema) | llama_cpp (json_object + schema) | off.
        "LLM_STRUCTURED_OUTPUT": os.environ.get("LLM_STRUCTURED_OUTPUT", "auto"),
        # Under `make run`: where the local model's build reports progress (scripts/local_model.py).
        "LOCAL_MODEL_STATUS_KEY": os.environ.get("LOCAL_MODEL_STATUS_KEY", "copydeck:local_model"),
        # Worker runtime: processes x threads = generations in flight; seconds to finish them on SIGTERM.
        "WORKER_THREADS": _int("WORKER_THREADS", 150),
        "WORKER_GRACE": _float("WORKER_GRACE", 25.0),
        # Tokens reach the Redis stream in batches: the first at once, then at most every STREAM_FLUSH_MS.
        "STREAM_FLUSH_MS": _int("STREAM_FLUSH_MS", 50),
        # Outbound webhooks (app/webhooks): the SSRF guard, timeouts and the retry schedule.
        "WEBHOOK_ALLOWED_HOSTS": [h.strip().lower() for h in (os.environ.get("WEBHOOK_ALLOWED_HOSTS") or "").split(",")
                                  if h.strip()],
        "WEBHOOK_REQUIRE_HTTPS": _bool("WEBHOOK_REQUIRE_HTTPS", production),
        "WEBHOOK_TIMEOUT": _float("WEBHOOK_TIMEOUT", 5.0),
        "WEBHOOK_DEADLINE": _float("WEBHOOK_DEADLINE", 10.0),
        "WEBHOOK_MAX_RESPONSE_BYTES": _int("WEBHOOK_MAX_RESPONSE_BYTES", 4096),
        "WEBHOOK_RETRY_BASE": _int("WEBHOOK_RETRY_BASE", 60),
        "WEBHOOK_RETRY_FACTOR": _int("WEBHOOK_RETRY_FACTOR", 3),
        "WEBHOOK_RETRY_CAP": _int("WEBHOOK_RETRY_CAP", 8 * 3600),
        "WEBHOOK_RETRY_WINDOW": _int("WEBHOOK_RETRY_WINDOW", 24 * 3600),
        "WEBHOOK_RETENTION_DAYS": _int("WEBHOOK_RETENTION_DAYS", 30, minimum=2),
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
        # Untrusted prompt templates render in worker processes with these bounds (app/catalog/rendering.py).
        "RENDER_CPU_SECONDS": _float("RENDER_CPU_SECONDS", 1.0),
        "RENDER_WALL_SECONDS": _float("RENDER_WALL_SECONDS", 5.0),
        "RENDER_MEMORY_MB": _int("RENDER_MEMORY_MB", 128),
        "RENDER_WORKERS": _int("RENDER_WORKERS", 2),
        # Web
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI") or redis_url,
        "RATELIMIT_HEADERS_ENABLED": True,
        # Redis down: limits keep working per process instead of failing every request.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "SSE_BLOCK_MS": _int("SSE_BLOCK_MS", 15000),
        "STREAM_TTL_SECONDS": _int("STREAM_TTL_SECONDS", 3600),
        # Live streams (SSE): bounds per user, generation and web process; leases expire unless renewed.
        "STREAM_MAX_PER_USER": _int("STREAM_MAX_PER_USER", 10),
        "STREAM_MAX_PER_GENERATION": _int("STREAM_MAX_PER_GENERATION", 5),
        "STREAM_MAX_PER_PROCESS": _int("STREAM_MAX_PER_PROCESS", max(1, _int("WEB_THREADS", 64) // 2)),
        "STREAM_LEASE_SECONDS": _int("STREAM_LEASE_SECONDS", 30),
        "STREAM_RECHECK_SECONDS": _float("STREAM_RECHECK_SECONDS", 5.0),
        # Port of the separate live-stream server on the page's own host (make run sets it); empty: same origin.
        "STREAM_PORT": os.environ.get("STREAM_PORT") or None,
        "HISTORY_PAGE_SIZE": _int("HISTORY_PAGE_SIZE", 20),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", env == "production"),
        "WTF_CSRF_TIME_LIMIT": None,
        # Sessions (app/auth/sessions.py): any login, remembered or not, ends after this many days.
        "REMEMBER_COOKIE_DURATION": timedelta(days=_int("REMEMBER_COOKIE_DAYS", 14)),
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        # Failed log-ins (app/auth/throttle.py): per account and client (device cookie or IP), per account
        # across unknown clients, and per IP across accounts (browsers that logged in before are exempt).
        "LOGIN_LIMIT_PER_CLIENT": os.environ.get("LOGIN_LIMIT_PER_CLIENT") or "5 per 15 minutes",
        "LOGIN_LIMIT_PER_ACCOUNT": os.environ.get("LOGIN_LIMIT_PER_ACCOUNT") or "20 per hour",
        "LOGIN_LIMIT_PER_IP": os.environ.get("LOGIN_LIMIT_PER_IP") or "30 per 10 minutes",
        "LOGIN_DEVICE_DAYS": _int("LOGIN_DEVICE_DAYS", 365),
        # Production hardening (README "Running in production").
        # Proxies in front of the app whose X-Forwarded-For/-Proto/-Host/-Port are trusted (0: none).
        "TRUSTED_PROXY_HOPS": _int("TRUSTED_PROXY_HOPS", 0, minimum=0),
        "PREFERRED_URL_SCHEME": "https" if production else "http",
        "REMEMBER_COOKIE_SECURE": _bool("REMEMBER_COOKIE_SECURE", production),
        # Request bodies: every route gets MAX_CONTENT_LENGTH; app/security.py raises or lowers it per route.
        "MAX_CONTENT_LENGTH": _int("MAX_FORM_BYTES", 1024 * 1024, minimum=1024),
        "WEBHOOK_MAX_BYTES": _int("WEBHOOK_MAX_BYTES", 64 * 1024, minimum=1024),
        "UPLOAD_MAX_BYTES": _int("UPLOAD_MAX_BYTES", 16 * 1024 * 1024, minimum=1024),
        "HSTS_SECONDS": _int("HSTS_SECONDS", 365 * 24 * 3600 if production else 0, minimum=0),
        "LOG_FORMAT": _choice("LOG_FORMAT", "json" if production else "text", ("json", "text")),
        "LOG_LEVEL": _choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        # GET /metrics: with a token, `Authorization: Bearer <token>` from anywhere; without, loopback only.
        "METRICS_TOKEN": _str("METRICS_TOKEN"),
        # A worker whose last heartbeat is older than this is not counted live (RQ's worker_ttl).
        "WORKER_TTL": _int("WORKER_TTL", 420, minimum=15),
        # Knowledge passages a prompt may receive, in tokens estimated as characters / 4 (app/knowledge).
        "KNOWLEDGE_TOKEN_BUDGET": _int("KNOWLEDGE_TOKEN_BUDGET", 1200, minimum=100),
    }
