"""The one way to change a lifecycle state."""
from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Protocol

from flask_babel import gettext as _

from core.errors import IllegalTransition


class HasState(Protocol):
    state: StrEnum


def can_move(obj: HasState, to: StrEnum, allowed: Mapping[StrEnum, set[StrEnum]]) -> bool:
    return to in allowed.get(obj.state, set())


def move(obj: HasState, to: StrEnum, allowed: Mapping[StrEnum, set[StrEnum]],
         labels: Mapping[StrEnum, object] | None = None) -> None:
    """Change obj.state if the table allows it; else refuse in words the user reads (labels)."""
    if not can_move(obj, to, allowed):
        label = (labels or {}).get
        raise IllegalTransition("illegal_transition", _("Cannot go from %(a)s to %(b)s.",
                                                        a=str(label(obj.state, obj.state)), b=str(label(to, to))))
    obj.state = to
