"""(being written)"""
from __future__ import annotations

from marketplace.views import bp  # noqa: F401

NAV: list = []
