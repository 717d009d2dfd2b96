"""Checks on every request's input before any view sees it."""
from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.exceptions import BadRequest


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def refuse_nul_characters() -> None:
    """NUL is never valid text: PostgreSQL cannot store it, so refuse it at the door on both databases."""
    values = [request.path, *(v for _k, v in request.args.items(multi=True)),
              *(v for _k, v in request.form.items(multi=True))]
    if request.is_json:
        values.append(request.get_json(silent=True))
    if any(_has_nul(value) for value in values):
        raise BadRequest()
