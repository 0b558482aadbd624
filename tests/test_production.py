"""Production configuration: required settings, the dev secret, the trusted proxy, secure cookies,
security headers and request body limits."""
from __future__ import annotations

import email
import email.policy
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from app import config

REPO = Path(__file__).resolve().parent.parent
PRODUCTION = {"COPYDECK_ENV": "production", "SECRET_KEY": "s" * 32,
              "DATABASE_URL": "postgresql://db.internal/copydeck", "REDIS_URL": "redis://redis.internal:6379/0"}


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """config.load() against an environment of our choosing and a private instance/ folder."""
    for name in list(os.environ):
        if name in config.REQUIRED_IN_PRODUCTION or name in ("COPYDECK_ENV", "LOG_FORMAT", "HSTS_SECONDS"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(config, "INSTANCE", tmp_path / "instance")
    return monkeypatch


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize("missing", config.REQUIRED_IN_PRODUCTION)
def test_production_refuses_to_start_without_each_required_setting(clean_env, missing):
    for name, value in PRODUCTION.items():
        if name != missing:
            clean_env.setenv(name, value)
    with pytest.raises(config.ConfigError) as refused:
        config.load()
    message = str(refused.value)
    assert missing in message and "COPYDECK_ENV=production" in message
    assert not any(name in message for name in config.REQUIRED_IN_PRODUCTION if name != missing)


def test_production_names_every_missing_setting_and_the_process_exits(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in (*config.REQUIRED_IN_PRODUCTION, "COPYDECK_ENV")}
    env["COPYDECK_ENV"] = "production"
    result = subprocess.run([sys.executable, "-c", "from app import create_app; create_app()"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "COPYDECK_ENV=production needs SECRET_KEY, DATABASE_URL, REDIS_URL" in result.stderr


def test_production_with_every_setting_starts_with_secure_cookies(clean_env):
    for name, value in PRODUCTION.items():
        clean_env.setenv(name, value)
    settings = config.load()
    assert settings["SESSION_COOKIE_SECURE"] and settings["REMEMBER_COOKIE_SECURE"]
    assert settings["REMEMBER_COOKIE_HTTPONLY"] and settings["PREFERRED_URL_SCHEME"] == "https"
    assert settings["HSTS_SECONDS"] >= 180 * 24 * 3600 and settings["LOG_FORMAT"] == "json"
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://db.internal/copydeck"


@pytest.mark.parametrize(("url", "connections"), [("postgresql://db.internal/copydeck", 15), (None, 80)])
def test_database_pools_fit_a_server_databases_connection_limit(clean_env, url, connections):
    """Six processes of make run x 15 stay under PostgreSQL's default 100 connections; SQLite's
    connections cost nothing, so it keeps a pool as large as a web process's threads."""
    for name in ("DB_POOL_SIZE", "DB_MAX_OVERFLOW"):
        clean_env.delenv(name, raising=False)
    if url:
        clean_env.setenv("DATABASE_URL", url)
    options = config.load()["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["pool_size"] + options["max_overflow"] == connections
    clean_env.setenv("DB_POOL_SIZE", "3")
    assert config.load()["SQLALCHEMY_ENGINE_OPTIONS"]["pool_size"] == 3


@pytest.mark.parametrize(("name", "value", "says"), [
    ("JOB_TIMEOUT", "three minutes", "JOB_TIMEOUT must be a whole number, not 'three minutes'"),
    ("TRUSTED_PROXY_HOPS", "-1", "TRUSTED_PROXY_HOPS must be at least 0"),
    ("LLM_DEADLINE", "soon", "LLM_DEADLINE must be a number"),
    ("SMTP_STARTTLS", "maybe", "SMTP_STARTTLS must be true or false"),
    ("COPYDECK_ENV", "prod", "COPYDECK_ENV must be one of development, production"),
    ("LOG_FORMAT", "xml", "LOG_FORMAT must be one of json, text"),
])
def test_a_malformed_setting_is_refused_by_name(clean_env, name, value, says):
    clean_env.setenv(name, value)
    with pytest.raises(config.ConfigError, match=re.escape(says)):
        config.load()


def test_development_secret_is_random_kept_in_instance_and_reused(clean_env):
    first = config.load()["SECRET_KEY"]
    path = config.INSTANCE / "secret_key"
    assert path.read_text().strip() == first and len(first) >= 64
    assert path.stat().st_mode & 0o777 == 0o600
    assert first != "dev-insecure-secret-change-me"
    assert config.load()["SECRET_KEY"] == first  # every process (web, workers) reads the same one
    assert list(config.INSTANCE.iterdir()) == [path]  # no temporary file left behind


def test_development_secret_differs_between_installs(clean_env, tmp_path):
    first = config.load()["SECRET_KEY"]
    clean_env.setattr(config, "INSTANCE", tmp_path / "another-install")
    assert config.load()["SECRET_KEY"] != first


def test_a_set_secret_key_wins_and_writes_nothing(clean_env):
    clean_env.setenv("SECRET_KEY", "from-the-environment")
    assert config.load()["SECRET_KEY"] == "from-the-environment"
    assert not (config.INSTANCE / "secret_key").exists()


def test_remember_cookie_is_secure_in_production(app, make_user, make_app, monkeypatch):
    """A real log-in with "remember me" against an app built with production settings."""
    from app.extensions import db
    monkeypatch.delenv("HSTS_SECONDS", raising=False)
    production = make_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False,
                           "LOG_FORMAT": "text"}, env={"COPYDECK_ENV": "production"})
    try:
        make_user("remembered@example.com")
        client = production.test_client()
        response = client.post("/login", data={"email": "remembered@example.com", "password": "correct-horse-battery",
                                               "remember": "y"}, base_url="https://copy.example.com")
        assert response.status_code == 302
        cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
        assert "Secure" in cookies["remember_token"] and "HttpOnly" in cookies["remember_token"]
        assert "Secure" in cookies["session"]
        assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    finally:
        with production.app_context():
            db.engine.dispose()


# --------------------------------------------------------------------------- proxy


def _latest_mail(app) -> email.message.EmailMessage:
    newest = max(Path(app.config["MAIL_OUTBOX"]).glob("*.eml"), key=lambda p: p.stat().st_mtime)
    return email.message_from_bytes(newest.read_bytes(), policy=email.policy.default)


@pytest.fixture
def proxied_app(app, make_app):
    """The app as deployed behind one proxy, with rate limits on (reset to off afterwards)."""
    from app.extensions import db, limiter
    proxied = make_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": True,
                          "TRUSTED_PROXY_HOPS": 1})
    yield proxied
    limiter.enabled = False
    with proxied.app_context():
        db.engine.dispose()


FORWARDED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "copy.example.com"}


def test_behind_a_trusted_proxy_emailed_links_use_the_public_scheme_and_host(proxied_app, make_user):
    make_user("forgetful@example.com")
    client = proxied_app.test_client()
    response = client.post("/forgot", data={"email": "forgetful@example.com"}, headers=FORWARDED)
    assert response.status_code == 302
    body = _latest_mail(proxied_app).get_body(("plain",)).get_content()
    assert re.search(r"https://copy\.example\.com/reset/\S+", body), body


def test_without_trusted_proxies_forwarded_headers_are_ignored(app, client, make_user):
    make_user("forgetful@example.com")
    assert client.post("/forgot", data={"email": "forgetful@example.com"}, headers=FORWARDED).status_code == 302
    body = _latest_mail(app).get_body(("plain",)).get_content()
    assert "http://localhost/reset/" in body and "copy.example.com" not in body


def test_rate_limits_key_on_the_client_address_the_proxy_saw(proxied_app):
    """Behind the proxy every request comes from its address; the limit (5 resets per 15 minutes)
    must still count per client, and a client cannot pick its address by sending the header itself."""
    client = proxied_app.test_client()

    def forgot(chain: str) -> int:
        return client.post("/forgot", data={"email": "nobody@example.com"},
                           headers={"X-Forwarded-For": chain}).status_code

    assert [forgot("203.0.113.7") for _ in range(5)] == [302] * 5
    assert forgot("203.0.113.7") == 429
    assert forgot("203.0.113.8") == 302  # another client behind the same proxy
    # A client-supplied entry before the proxy's own is not trusted: still 203.0.113.7.
    assert forgot("198.51.100.1, 203.0.113.7") == 429


# --------------------------------------------------------------------------- headers

SECURITY_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy")


@pytest.mark.parametrize("path", ["/", "/login", "/up", "/static/js/app.js", "/no-such-page"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    response.close()
    for name in SECURITY_HEADERS:
        assert name in response.headers, (path, name)
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in response.headers  # development is plain http


def test_the_live_stream_server_is_an_allowed_connect_source(app, client):
    """Pages open their EventSource on STREAM_PORT of their own host: the policy must allow it."""
    assert "connect-src 'self';" in client.get("/login").headers["Content-Security-Policy"]
    app.config["STREAM_PORT"] = "5601"
    try:
        policy = client.get("/login", base_url="https://copy.example.com:8443").headers["Content-Security-Policy"]
        assert "connect-src 'self' https://copy.example.com:5601;" in policy
    finally:
        app.config["STREAM_PORT"] = None


def test_hsts_is_sent_when_configured(app, client):
    app.config["HSTS_SECONDS"] = 600
    try:
        assert client.get("/login").headers["Strict-Transport-Security"] == "max-age=600; includeSubDomains"
    finally:
        app.config["HSTS_SECONDS"] = 0


INLINE_CODE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an inline event handler"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
    (re.compile(r"hx-on|hx-vals=['\"]js:", re.I), "htmx code evaluated from an attribute"),
]


def test_templates_have_no_inline_code_the_policy_would_block():
    found = []
    for path in sorted((REPO / "templates").rglob("*.html")):
        if "email" in path.parts:  # mail clients, not browsers under our CSP
            continue
        text = path.read_text()
        for pattern, what in INLINE_CODE:
            for match in pattern.finditer(text):
                found.append(f"{path.relative_to(REPO)}:{text.count(chr(10), 0, match.start()) + 1}: {what}")
    assert not found, "\n".join(found)


def test_htmx_is_told_not_to_inject_its_inline_styles(client):
    page = client.get("/login").get_data(as_text=True)
    assert '<meta name="htmx-config" content=\'{"includeIndicatorStyles": false}\'>' in page


# --------------------------------------------------------------------------- body limits


class CountingStream(io.RawIOBase):
    """A request body that claims to be huge and counts what the app reads of it.

    Passed as the raw `wsgi.input`, as a server would (the test client's builder wants a seekable
    stream, and would measure it)."""

    def __init__(self, size: int):
        self.size, self.read_bytes = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.size - self.read_bytes)
        buffer[:n] = b"x" * n
        self.read_bytes += n
        return n


def raw_body(stream: CountingStream, content_type: str, chunked: bool = False) -> dict:
    """WSGI environ entries for a body as a server hands it over (chunked: no length, terminated)."""
    environ = {"wsgi.input": stream, "CONTENT_TYPE": content_type}
    if chunked:
        environ.update({"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True})
    else:
        environ["CONTENT_LENGTH"] = str(stream.size)
    return environ


def test_an_oversized_webhook_is_refused_with_413_before_it_is_read(app, client):
    body = CountingStream(100 * 1024 * 1024)
    response = client.post("/billing/webhook", environ_overrides=raw_body(body, "application/json"))
    assert response.status_code == 413
    assert body.read_bytes == 0
    assert "larger than this page accepts (64 KB)" in response.get_data(as_text=True)


def test_the_webhook_limit_is_small_and_forms_get_more(app, client):
    just_over = b"{" + b" " * (app.config["WEBHOOK_MAX_BYTES"]) + b"}"
    assert client.post("/billing/webhook", data=just_over, content_type="application/json").status_code == 413
    # The same size is fine for a form (refused by the form, not by size).
    form = {"email": "nobody@example.com", "password": "x" * (100 * 1024)}
    assert client.post("/login", data=form).status_code == 422


def test_an_oversized_form_is_refused_with_a_clear_page(client):
    body = CountingStream(2 * 1024 * 1024)
    response = client.post("/login", environ_overrides=raw_body(body, "application/x-www-form-urlencoded"))
    assert response.status_code == 413 and body.read_bytes == 0
    page = response.get_data(as_text=True)
    assert "Too large" in page and "(1 MB)" in page and "Nothing was saved" in page
    assert response.headers["X-Request-ID"]  # refused early, still traceable in the logs


def test_a_chunked_body_without_length_is_cut_at_the_limit(client):
    body = CountingStream(10 * 1024 * 1024)
    response = client.post("/login", environ_overrides=raw_body(body, "application/x-www-form-urlencoded",
                                                                chunked=True))
    assert response.status_code == 413
    assert body.read_bytes <= 1024 * 1024 + 64 * 1024  # read up to the limit, never to the end


def test_the_template_import_accepts_an_upload_over_the_form_limit(app, client, login):
    """A site admin's 2 MB template zip is over the 1 MB form limit but inside UPLOAD_MAX_BYTES."""
    from app.auth.models import User
    from app.extensions import db
    user_id = login("root@example.com")
    with app.app_context():
        db.session.get(User, user_id).is_site_admin = True
        db.session.commit()
    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(b"# padding\n" * (200 * 1024)), "big.yaml")})
    response = client.post("/admin/templates/import", data=body,
                           content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code != 413
    assert "larger than 256 KB" in response.get_data(as_text=True)  # the importer's own per-file bound
    huge = CountingStream(app.config["UPLOAD_MAX_BYTES"] + 1)
    response = client.post("/admin/templates/import",
                           environ_overrides=raw_body(huge, "multipart/form-data; boundary=x"))
    assert response.status_code == 413 and huge.read_bytes == 0
