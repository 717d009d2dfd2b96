"""Checks on every request's input before any view sees it: the one place that refuses what no view
could answer sensibly, on pages and in the API alike.

- A JSON body that does not parse (bad syntax or encoding, nesting deeper than the parser's recursion
  allows, an integer of more digits than Python converts) → 400 invalid_json.
- NUL in the path, the query string, a form field or any JSON string or key: PostgreSQL cannot store it,
  so it is refused at the door on both databases: 400 nul_character for the path, query and form, 422
  validation_error naming the top-level field for a JSON body (as the API schemas' own rule says)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import request
from flask_babel import gettext as _
from werkzeug.routing import IntegerConverter

from core.errors import InvalidInput, RuleBroken

NUL = "\x00"
MAX_ID = 2**31 - 1  # ids are 32-bit: a larger number in a URL or query finds nothing rather than overflow
MAX_PAGE = 1_000_000  # a larger ?page= shows the last, empty page rather than overflow the database's OFFSET


class IdConverter(IntegerConverter):
    """`<id:booking_id>` in a route: a positive 32-bit id; anything else is the page not found."""

    def __init__(self, url_map, **kwargs) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


def page_number() -> int:
    """The ?page= asked for: 1 when missing or bad, at most MAX_PAGE."""
    return min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)


def chosen_ids(name: str) -> list[int]:
    """The ids a list's checkboxes named `name` sent (a batch action): whole numbers in the id range only."""
    return [value for value in request.form.getlist(name, type=int) if 0 < value <= MAX_ID]


def check_request_input() -> None:
    values = [request.path, *(v for _k, v in request.args.items(multi=True)),
              *(v for _k, v in request.form.items(multi=True))]
    if any(NUL in value for value in values):
        raise InvalidInput("nul_character", _("Text may not contain the NUL character."))
    if request.is_json and request.content_length != 0:
        body = _json_body()
        for field, text in _strings(body):
            if NUL in text:
                raise RuleBroken("validation_error", _("NUL characters are not allowed."), field=field or "_body")


def _json_body() -> Any:
    data = request.get_data(cache=True)  # within MAX_CONTENT_LENGTH, else 413
    if not data.strip():
        return None  # an empty body: the view's schema says what is missing
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # ValueError covers bad UTF-8 and the 4,300-digit integer limit
        raise InvalidInput("invalid_json", _("The body is not valid JSON.")) from None


def _strings(body: Any) -> Iterator[tuple[str | None, str]]:
    """Every string of a parsed JSON body, keys included, with the top-level key it sits under; walked
    without recursion, so any depth the parser accepted is walked too."""
    stack: list[tuple[str | None, Any]] = [(None, body)]
    while stack:
        field, value = stack.pop()
        if isinstance(value, str):
            yield field, value
        elif isinstance(value, dict):
            for key, item in value.items():
                top = key if field is None else field
                yield top, key
                stack.append((top, item))
        elif isinstance(value, list):
            stack.extend((field, item) for item in value)
