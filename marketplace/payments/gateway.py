"""The payment gateway's HTTP API, as Stripe defines it, reached with `requests` (no vendor SDK).

Development and tests use localstripe (marketplace/payments/localstripe_server.py); production points
STRIPE_API_BASE and STRIPE_SECRET_KEY at Stripe or a compatible gateway. What localstripe 1.15.10
accepts was read in its resources.py: unknown parameters are refused (400), Idempotency-Key is
ignored, a partial capture shows the rest as a refund, confirm takes no payment_method (attach it to
the intent first), and a list of intents filters by nothing but paging."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests
from flask import current_app


class GatewayError(Exception):
    """kind: "declined" (402), "unavailable" (no answer, timeout, 5xx) or "invalid" (any other refusal)."""

    def __init__(self, kind: str, message: str, *, code: str | None = None):
        super().__init__(message)
        self.kind, self.message, self.code = kind, message, code


class StripeClient:
    """Form-encoded calls with the secret key and a timeout (seconds, or (connect, read)); every POST
    carries an Idempotency-Key."""

    def __init__(self, base_url: str, secret_key: str, timeout: float | tuple[float, float]):
        self.base_url, self.secret_key, self.timeout = base_url.rstrip("/"), secret_key, timeout

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict:
        return self._call("GET", path, params=params)

    def post(self, path: str, params: dict[str, Any] | None = None, *, key: str) -> dict:
        return self._call("POST", path, data=form_encode(params or {}), headers={"Idempotency-Key": key})

    def _call(self, method: str, path: str, **kwargs: Any) -> dict:
        try:
            response = requests.request(method, self.base_url + path, auth=(self.secret_key, ""),
                                        timeout=self.timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as error:
            raise GatewayError("unavailable", f"{method} {path}: {type(error).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 500 or not isinstance(body, dict):  # a crash, a proxy's error page
            raise GatewayError("unavailable", f"{method} {path}: HTTP {response.status_code}")
        error = body.get("error") or {}
        if response.status_code == 402:
            raise GatewayError("declined", error.get("message", "declined"), code=error.get("code"))
        if response.status_code >= 400:
            raise GatewayError("invalid", f"{method} {path}: HTTP {response.status_code} {error.get('message', '')}",
                               code=error.get("code"))
        return body

    def intents(self) -> Iterator[dict]:
        """Every PaymentIntent, page by page."""
        after: str | None = None
        while True:
            page = self.get("/v1/payment_intents", {"limit": 100, **({"starting_after": after} if after else {})})
            yield from page["data"]
            if not page["has_more"] or not page["data"]:
                return
            after = page["data"][-1]["id"]


def form_encode(params: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding: {"metadata": {"booking_id": 7}} → metadata[booking_id]=7; booleans true/false."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        key = f"{prefix}[{name}]" if prefix else str(name)
        if isinstance(value, dict):
            pairs.extend(form_encode(value, key))
        elif isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif value is not None:
            pairs.append((key, str(value)))
    return pairs


def gateway() -> StripeClient:
    """The client the app's configuration describes."""
    config = current_app.config
    return StripeClient(config["STRIPE_API_BASE"], config["STRIPE_SECRET_KEY"],
                        (config["PAYMENT_CONNECT_TIMEOUT_SECONDS"], config["PAYMENT_READ_TIMEOUT_SECONDS"]))
