"""What every response carries for the browser's protection (security headers, the content security
policy), and the client's real address behind trusted reverse proxies (PROXY_FIX)."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response
from werkzeug.middleware.proxy_fix import ProxyFix

# An SVG chart opened on its own is a document: its inline <style> draws it, and nothing runs.
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


def register(app: Flask) -> None:
    if app.config["SESSION_COOKIE_SECURE"]:  # over HTTPS only: the remember-me cookie as the session's
        app.config["REMEMBER_COOKIE_SECURE"] = True
    trust_proxies(app)
    headers = security_headers(app)

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        if response.mimetype == "image/svg+xml":
            response.headers["Content-Security-Policy"] = SVG_POLICY
        return response


def trust_proxies(app: Flask) -> None:
    """Behind PROXY_FIX reverse proxies, each of which appends the address it received a request from
    to X-Forwarded-For (and sets X-Forwarded-Proto), the client is the address the outermost proxy saw:
    the log-in limits and the audit log see it as request.remote_addr. With 0, the default, those
    headers are ignored, since any client may send them."""
    proxies = int(app.config.get("PROXY_FIX", 0) or 0)
    if proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def payment_script_url(config: dict) -> str:
    """Stripe.js where configured, else the stand-in that localstripe serves beside its API."""
    return config["STRIPE_JS_URL"] or f"{config['STRIPE_API_BASE']}/js.stripe.com/v3/"


def content_security_policy(config: dict) -> str:
    """Scripts, styles, fonts and images from our own origin only; no inline script or style, no
    plugin, no framing of our pages. The card field's script comes from the payment gateway, and
    talks to its API (Stripe.js also draws the field in a frame of its own origin)."""
    gateway_script = _origin(payment_script_url(config))
    directives = {
        "default-src": "'self'",
        "script-src": f"'self' {gateway_script}",
        "style-src": "'self'",
        "img-src": "'self' data:",  # Bootstrap draws its icons (the menu button's) as data: SVG
        "font-src": "'self'",
        "connect-src": f"'self' {_origin(config['STRIPE_API_BASE'])}",
        "frame-src": gateway_script if config["STRIPE_JS_URL"] else "'none'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def security_headers(app: Flask) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(app.config),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        # Our own pages see where a person came from (their "back" links); other sites see nothing
        "Referrer-Policy": "same-origin",
    }
