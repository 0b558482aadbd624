"""Web hardening that applies to every request: the trusted proxy, request body limits and
security headers.

- **Proxy.** Behind TRUSTED_PROXY_HOPS proxies, werkzeug's ProxyFix takes the client address,
  scheme, host and port from that many X-Forwarded-* hops, so rate limits key on the real client
  and emailed links are https:// on the public host. With 0 (the default) the headers are ignored:
  trusting them without a proxy would let any client choose its own address.
- **Bodies.** MAX_CONTENT_LENGTH (MAX_FORM_BYTES) bounds every request; BODY_LIMITS lowers it for
  the Stripe webhook and raises it for the template import upload. A larger body is refused with
  413 from its Content-Length, before it is read.
- **Headers.** A Content-Security-Policy the app's own pages satisfy (scripts and styles only from
  /static, no inline code), no framing, nosniff, a referrer policy, and HSTS in production.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, abort, current_app, has_request_context, request
from werkzeug.middleware.proxy_fix import ProxyFix

# Endpoint -> the setting that bounds its request body (every other route: MAX_CONTENT_LENGTH).
BODY_LIMITS = {
    "billing.webhook": "WEBHOOK_MAX_BYTES",
    "admin.import_templates": "UPLOAD_MAX_BYTES",
    "bulk.upload": "UPLOAD_MAX_BYTES",  # a sheet of up to 10 MB (app/bulk/parsing.MAX_BYTES) and the form around it
    "api_v1.bulk_runs_upload": "UPLOAD_MAX_BYTES",  # the same sheet through the API
    "knowledge.upload": "UPLOAD_MAX_BYTES",  # the plan's own file limit is checked after (app/knowledge)
}

# Where forms may send the browser: here, and Stripe's hosted Checkout and portal pages.
STRIPE_HOSTED_PAGES = ("https://checkout.stripe.com", "https://billing.stripe.com")


def stream_origin(app: Flask) -> str | None:
    """The live-stream server's origin for this request: same scheme and host, STREAM_PORT
    (pages open their EventSource there when `make run` runs a separate stream server)."""
    port = app.config.get("STREAM_PORT")
    if not port or not has_request_context():
        return None
    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    return f"{request.scheme}://{host}:{port}"


def content_security_policy(app: Flask) -> str:
    """The policy: everything from this origin only (plus the live-stream server's port),
    nothing inline, no framing."""
    form_targets = ["'self'", *STRIPE_HOSTED_PAGES]
    api_base = app.config.get("STRIPE_API_BASE")
    if api_base:  # stripe-mock or the tests' fake serve the hosted pages themselves
        parts = urlsplit(api_base)
        form_targets.append(f"{parts.scheme}://{parts.netloc}")
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": " ".join(filter(None, ["'self'", stream_origin(app)])),
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": " ".join(form_targets),
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def body_limit(endpoint: str | None) -> int:
    """The request-body bound of an endpoint, in bytes."""
    key = BODY_LIMITS.get(endpoint or "")
    return current_app.config[key] if key else current_app.config["MAX_CONTENT_LENGTH"]


def init_app(app: Flask) -> None:
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)  # type: ignore[method-assign]  # Flask's documented middleware hook

    def limit_request_body() -> None:
        """Set this route's body bound before anything (CSRF checks included) reads the form.

        A body with a Content-Length over the bound is refused unread (werkzeug checks the header).
        A chunked body has no length: werkzeug would stop at the bound and parse what it got, so it
        is read here up to the bound, and refused if anything is left.
        """
        limit = request.max_content_length = body_limit(request.endpoint)
        if request.content_length is None and request.environ.get("wsgi.input_terminated"):
            request.get_data(cache=True, parse_form_data=False)
            if len(request.get_data()) >= limit and request.environ["wsgi.input"].read(1):
                abort(413)

    # First in line: CSRFProtect's own before_request reads request.form.
    app.before_request_funcs.setdefault(None, []).insert(0, limit_request_body)

    headers = {
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }

    @app.after_request
    def security_headers(response):
        # Built per response: it follows STRIPE_API_BASE and HSTS_SECONDS as they are now.
        response.headers.setdefault("Content-Security-Policy", content_security_policy(app))
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        if app.config["HSTS_SECONDS"]:
            response.headers.setdefault("Strict-Transport-Security",
                                        f"max-age={app.config['HSTS_SECONDS']}; includeSubDomains")
        return response
