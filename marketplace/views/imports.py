"""Marketplace pages: imports."""
from __future__ import annotations

from core.templating import NavItem

from marketplace.views import bp  # noqa: F401

NAV: list[NavItem] = []
