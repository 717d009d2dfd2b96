"""Errors a service raises: a code, a translated message and an HTTP status."""
from __future__ import annotations

from typing import Any


class KequipError(Exception):
    status = 400

    def __init__(self, code: str, message: str, *, field: str | None = None, details: Any = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.details = details


class InvalidInput(KequipError):
    """Input no view can read: a body that is not JSON, a NUL character."""

    status = 400


class RuleBroken(KequipError):
    status = 422


class Conflict(KequipError):
    status = 409


class Forbidden(KequipError):
    status = 403


class NotFound(KequipError):
    status = 404


class IllegalTransition(RuleBroken):
    pass


class Unauthorized(KequipError):
    status = 401


class TooManyRequests(KequipError):
    """A limit on attempts is spent: Retry-After says in how many seconds the next one is heard."""

    status = 429

    def __init__(self, code: str, message: str, *, retry_after: int):
        super().__init__(code, message)
        self.headers = {"Retry-After": str(retry_after)}
