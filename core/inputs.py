"""Checks on every request's input before any view sees it."""
from __future__ import annotations

from flask import request
from werkzeug.exceptions import BadRequest


def refuse_nul_characters() -> None:
    """NUL is never valid text: PostgreSQL cannot store it, so refuse it at the door on both databases.
    (JSON bodies are checked field by field by the API schemas, which say so in the OpenAPI document.)"""
    values = [request.path, *(v for _k, v in request.args.items(multi=True)),
              *(v for _k, v in request.form.items(multi=True))]
    if any("\x00" in value for value in values):
        raise BadRequest()
