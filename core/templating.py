"""What every template may use: the navigation by role, labels, and local-time formatting."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import urlencode

from flask import Flask, current_app, has_request_context, request
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from core.audit import AUDIT_READERS
from core.auth import AccessRule, current_principal
from core.extensions import current_language, db
from core.models import (
    BUREAU_KIND_LABELS,
    CHANGE_STATE_LABELS,
    INDUSTRY_LABELS,
    KEY_FIELD_LABELS,
    LEGAL_FORM_LABELS,
    ORGANISATION_KIND_LABELS,
    PLATFORM_TYPE_LABELS,
    ROLE_LABELS,
    VERIFICATION_STATE_LABELS,
    Role,
    User,
)
from core.money import format_yuan
from core.services import count_pending_changes

NAV_EXTENSION = "kequip.nav"
TODO_EXTENSION = "kequip.todo"
INSTRUMENT_TABS_EXTENSION = "kequip.instrument_tabs"
HEADER_EXTENSION = "kequip.header_links"


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: object
    rule: AccessRule
    group: object | None = None  # items of one group share a drop-down menu, where the first of them stands


@dataclass(frozen=True)
class NavGroup:
    label: object
    items: list[NavItem]


def register_nav(app: Flask, items: list[NavItem], *, group: object | None = None) -> None:
    """Add a package's menu items; with a group, they share one drop-down menu."""
    app.extensions.setdefault(NAV_EXTENSION, []).extend(
        item if group is None or item.group is not None else replace(item, group=group) for item in items)


def nav_for(user: User | None) -> list[NavItem]:
    """Public items for everyone, the others for the logged-in people their rule lets in."""
    return [item for item in current_app.extensions.get(NAV_EXTENSION, [])
            if item.rule.is_public or (user is not None and item.rule.allows(user))]


def nav_menu(user: User | None) -> list[NavItem | NavGroup]:
    """nav_for's items with each group gathered into one drop-down (a group of one stays an item)."""
    groups: dict[str, list[NavItem]] = {}
    for item in nav_for(user):
        if item.group is not None:
            groups.setdefault(str(item.group), []).append(item)
    menu: list[NavItem | NavGroup] = []
    for item in nav_for(user):
        members = groups.get(str(item.group), []) if item.group is not None else []
        if len(members) < 2:
            menu.append(item)
        elif members[0] is item:
            menu.append(NavGroup(item.group, members))
    return menu


@dataclass(frozen=True)
class TodoCounter:
    """A queue a role works through: the dashboard shows how many wait in it, linked to the queue."""

    label: object
    rule: AccessRule
    count: Callable[[Session], int]  # one COUNT query
    endpoint: str
    url_args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HeaderLink:
    """A link in the page header with a count beside it (a package's queue that needs attention)."""

    endpoint: str
    label: object
    count: Callable[[Session, User], int | None]  # None: not shown to this person; one COUNT query


def register_header_link(app: Flask, link: HeaderLink) -> None:
    """Add a counted link to the page header, from a package above core."""
    app.extensions.setdefault(HEADER_EXTENSION, []).append(link)


def header_links_for(user: User | None) -> list[tuple[HeaderLink, int]]:
    """The header links the person sees, each with its count now."""
    if user is None:
        return []
    counted = [(link, link.count(db.session, user)) for link in current_app.extensions.get(HEADER_EXTENSION, [])]
    return [(link, count) for link, count in counted if count is not None]


def register_instrument_tab(app: Flask, endpoint: str, label: object) -> None:
    """Add a tab to the platform staff's pages of an instrument, from a package above the marketplace
    (its endpoint takes instrument_id)."""
    app.extensions.setdefault(INSTRUMENT_TABS_EXTENSION, []).append((endpoint, label))


def instrument_tabs_added() -> list[tuple[str, object, bool]]:
    """The added tabs as the tabs macro lists them: (endpoint, label, shown)."""
    return [(endpoint, label, True) for endpoint, label in current_app.extensions.get(INSTRUMENT_TABS_EXTENSION, [])]


def register_todo(app: Flask, counters: list[TodoCounter]) -> None:
    """Add a package's to-do counters to the dashboard, as register_nav adds menu items."""
    app.extensions.setdefault(TODO_EXTENSION, []).extend(counters)


def todos_for(session: Session, user: User) -> list[tuple[TodoCounter, int]]:
    """The counters the person's roles work through, each with how many wait now."""
    return [(counter, counter.count(session)) for counter in current_app.extensions.get(TODO_EXTENSION, [])
            if counter.rule.allows(user)]


CORE_NAV = [
    NavItem("core.dashboard", _l("Dashboard"), AccessRule(frozenset())),
    NavItem("core.organisations", _l("Organisations"),
            AccessRule(frozenset({Role.BUREAU_ADMIN, Role.AUDITOR, Role.FINANCE_OFFICER}))),
    NavItem("core.organisation_changes", _l("Organisation changes"), AccessRule(frozenset({Role.BUREAU_ADMIN}))),
    NavItem("core.users", _l("People and roles"), AccessRule(frozenset({Role.BUREAU_ADMIN}))),
    NavItem("core.audit_log", _l("Audit log"), AccessRule(AUDIT_READERS)),
    NavItem("core.jobs", _l("Scheduled jobs"), AccessRule(frozenset({Role.BUREAU_ADMIN, Role.AUDITOR}))),
]

CORE_TODO = [TodoCounter(_l("Organisation changes waiting for review"), AccessRule(frozenset({Role.BUREAU_ADMIN})),
                         count_pending_changes, "core.organisation_changes")]


def local_datetime(value: datetime | None, pattern: str = "yyyy-MM-dd HH:mm") -> str:
    """An aware UTC instant shown in Asia/Shanghai (BABEL_DEFAULT_TIMEZONE)."""
    return "" if value is None else format_datetime(value, pattern)


def yuan(fen: int | None) -> str:
    """The `yuan` filter: an amount in fen as yuan to the fen, 123456 → "¥1,234.56" (core.money)."""
    return "" if fen is None else format_yuan(fen)


def join_labels(values, labels: dict) -> str:
    """Labels of enum values as a list, with the separator of the page's language."""
    separator = "、" if current_language() == "zh_CN" else ", "
    return separator.join(str(labels[value]) for value in values)


def change_value(value: object, field: str) -> str:
    """A key field's kept value (an organisation change) as a person reads it: a template filter."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return str(_("Yes") if value else _("No"))
    labels = {"platform_type": PLATFORM_TYPE_LABELS, "legal_form": LEGAL_FORM_LABELS}.get(field)
    if labels is not None:
        return str(labels[value])
    return join_labels(value, INDUSTRY_LABELS) if field == "industries" else str(value)


def translated(labels: dict) -> dict:
    """Labels (lazy) in the page's language, each looked up once: for a page that shows them many times."""
    return {key: str(label) for key, label in labels.items()}


def language_switch(code: str) -> str:
    """The link to this page in another language: a relative "?…" keeps the path, and every other
    query parameter (a search, a page number, the login's next=) stays."""
    args = [(name, value) for name, value in request.args.items(multi=True) if name != "lang"]
    return "?" + urlencode([*args, ("lang", code)])


def register(app: Flask) -> None:
    register_nav(app, CORE_NAV)
    register_todo(app, CORE_TODO)
    app.add_template_filter(local_datetime, "local_dt")
    app.add_template_filter(join_labels)
    app.add_template_filter(change_value)
    app.add_template_filter(yuan)
    app.add_template_filter(translated)
    app.add_template_global(language_switch)
    app.add_template_global(instrument_tabs_added)

    @app.context_processor
    def inject() -> dict:
        user = current_principal() if has_request_context() else None
        return {"principal": user, "nav_items": nav_menu(user), "header_links": header_links_for(user),
                "current_locale": current_language(),
                "ROLE_LABELS": ROLE_LABELS, "ORGANISATION_KIND_LABELS": ORGANISATION_KIND_LABELS,
                "PLATFORM_TYPE_LABELS": PLATFORM_TYPE_LABELS, "LEGAL_FORM_LABELS": LEGAL_FORM_LABELS,
                "INDUSTRY_LABELS": INDUSTRY_LABELS, "BUREAU_KIND_LABELS": BUREAU_KIND_LABELS,
                "VERIFICATION_STATE_LABELS": VERIFICATION_STATE_LABELS, "KEY_FIELD_LABELS": KEY_FIELD_LABELS,
                "CHANGE_STATE_LABELS": CHANGE_STATE_LABELS}
