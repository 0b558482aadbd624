"""gunicorn settings, read from the environment (`gunicorn -c gunicorn.conf.py wsgi:app`).

`make run` (scripts/run.py) and a production deployment use the same file; .env.example lists
the variables. In production (LOG_FORMAT=json, the default when COPYDECK_ENV=production) the
access log and gunicorn's own messages are one JSON object a line, and each access line carries
the request id the app returned in X-Request-ID.
"""
from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone

from gunicorn.glogging import Logger


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _int(name: str, default: int) -> int:
    value = _env(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {value!r}") from None


production = _env("COPYDECK_ENV", "development") == "production"
log_format = _env("LOG_FORMAT", "json" if production else "text")

bind = _env("WEB_BIND", f"{_env('HOST', '127.0.0.1')}:{_env('PORT', '5000')}")
workers = _int("WEB_CONCURRENCY", 2)
# gthread: each open live stream (SSE) holds a thread, so threads bound the open streams.
worker_class = _env("WEB_WORKER_CLASS", "gthread")
threads = _int("WEB_THREADS", 64)
# A worker silent for this long is killed and replaced; live streams send keep-alives well within it.
timeout = _int("WEB_TIMEOUT", 60)
# On SIGTERM, requests in flight get this long to finish (keep it inside the orchestrator's grace).
graceful_timeout = _int("WEB_GRACEFUL_TIMEOUT", 5)
keepalive = _int("WEB_KEEPALIVE", 5)
# Recycle a worker after this many requests (0: never), with jitter so they do not restart together.
max_requests = _int("WEB_MAX_REQUESTS", 0)
max_requests_jitter = _int("WEB_MAX_REQUESTS_JITTER", max(max_requests // 10, 0))
accesslog = None if _env("WEB_ACCESS_LOG", "on").lower() in ("off", "0", "false", "no") else "-"
errorlog = "-"
loglevel = _env("LOG_LEVEL", "info").lower()
# The app trusts X-Forwarded-* itself (TRUSTED_PROXY_HOPS, werkzeug's ProxyFix); gunicorn must not
# rewrite the scheme from them on its own.
forwarded_allow_ips = _env("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


class JsonLogger(Logger):
    """gunicorn's logger, writing one JSON object a line (access and error logs)."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        from app.observability import JsonFormatter
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())
        for handler in self.access_log.handlers:
            handler.setFormatter(logging.Formatter("%(message)s"))

    def access(self, resp, req, environ, request_time) -> None:
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        entry = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "level": "INFO",
            "logger": "gunicorn.access",
            "request_id": atoms.get("{x-request-id}o") or None,
            "remote_addr": atoms.get("h"),
            "method": atoms.get("m"),
            "path": atoms.get("U"),
            "query": atoms.get("q") or None,
            "status": int(atoms["s"]) if str(atoms.get("s", "")).isdigit() else atoms.get("s"),
            "bytes": atoms.get("B"),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "user_agent": atoms.get("a"),
        }
        self.access_log.info(json.dumps({k: v for k, v in entry.items() if v is not None}))


if log_format == "json":
    logger_class = JsonLogger
else:
    access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms id=%({x-request-id}o)s'
