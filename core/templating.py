"""What every template may use: the navigation by role, labels, and local-time formatting."""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlencode

from cachetools import LRUCache

from flask import Flask, current_app, g, has_request_context, request
from flask_babel import format_datetime, get_translations
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from wtforms import SelectField
from wtforms.fields.choices import SelectChoice

from core.auth import AccessRule, current_principal
from core.extensions import current_language
from core.money import format_yuan
from core.models import (BUREAU_KIND_LABELS, INDUSTRY_LABELS, LEGAL_FORM_LABELS, ORGANISATION_KIND_LABELS,
                         PLATFORM_TYPE_LABELS, ROLE_LABELS, VERIFICATION_STATE_LABELS, Role, User)

NAV_EXTENSION = "kequip.nav"


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


CORE_NAV = [
    NavItem("core.dashboard", _l("Dashboard"), AccessRule(frozenset())),
    NavItem("core.organisations", _l("Organisations"),
            AccessRule(frozenset({Role.BUREAU_ADMIN, Role.AUDITOR, Role.FINANCE_OFFICER}))),
    NavItem("core.users", _l("People and roles"), AccessRule(frozenset({Role.BUREAU_ADMIN}))),
    NavItem("core.audit_log", _l("Audit log"), AccessRule(frozenset({Role.BUREAU_ADMIN, Role.AUDITOR}))),
]


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


def translated(labels: dict) -> dict:
    """Labels (lazy) in the page's language, each looked up once: for a page that shows them many times."""
    return {key: str(label) for key, label in labels.items()}


def language_switch(code: str) -> str:
    """The link to this page in another language: a relative "?…" keeps the path, and every other
    query parameter (a search, a page number, the login's next=) stays."""
    args = [(name, value) for name, value in request.args.items(multi=True) if name != "lang"]
    return "?" + urlencode([*args, ("lang", code)])


_OPTION = Markup('<option value="{}">{}</option>')
# a select's choices given as a tuple (fixed, as the catalogue's filter keeps them) → their options, by the
# tuple's identity; the tuple itself is kept beside them, so its id cannot pass to another meanwhile
_kept_options: LRUCache[int, tuple[tuple, Markup]] = LRUCache(maxsize=32)
_kept_options_lock = threading.Lock()


def select_options(field: SelectField) -> Markup:
    """A select field's <option> elements, the one of its value marked selected. Choices in a tuple are
    drawn once and kept (the catalogue's filter: some 250 options a page, about 1 ms)."""
    choices = field.choices
    if isinstance(choices, tuple):
        with _kept_options_lock:
            kept = _kept_options.get(id(choices))
        if kept is None or kept[0] is not choices:
            kept = (choices, _options(choices))
            with _kept_options_lock:
                _kept_options[id(choices)] = kept
        drawn = kept[1]
    else:
        drawn = _options(choices)
    opening = Markup('<option value="{}">').format("" if field.data is None else field.data)
    return drawn.replace(opening, opening[:-1] + Markup(" selected>"), 1)


def _options(choices) -> Markup:
    return Markup("").join(_OPTION.format(choice.value, choice.label)
                           for choice in map(SelectChoice.from_input, choices))


def _page_translations():
    """Flask-Babel looks the locale and the catalogue up again on every call, and a page makes
    hundreds of them. Within one request the language does not change, so the page's templates look
    them up once. Outside requests (mail rendered by jobs under force_locale) every call asks."""
    if not has_request_context():
        return get_translations()
    translations = g.get("_page_translations")
    if translations is None:
        translations = g._page_translations = get_translations()
    return translations


def register(app: Flask) -> None:
    register_nav(app, CORE_NAV)
    app.jinja_env.install_gettext_callables(  # as Flask-Babel installs them, with _page_translations
        gettext=lambda s: _page_translations().ugettext(s),
        ngettext=lambda s, p, n: _page_translations().ungettext(s, p, n),
        pgettext=lambda c, s: _page_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _page_translations().unpgettext(c, s, p, n),
        newstyle=True)
    app.add_template_filter(local_datetime, "local_dt")
    app.add_template_filter(join_labels)
    app.add_template_filter(yuan)
    app.add_template_filter(select_options)
    app.add_template_filter(translated)
    app.add_template_global(language_switch)

    @app.context_processor
    def inject() -> dict:
        user = current_principal() if has_request_context() else None
        return {"principal": user, "nav_items": nav_menu(user), "current_locale": current_language(),
                "ROLE_LABELS": ROLE_LABELS, "ORGANISATION_KIND_LABELS": ORGANISATION_KIND_LABELS,
                "PLATFORM_TYPE_LABELS": PLATFORM_TYPE_LABELS, "LEGAL_FORM_LABELS": LEGAL_FORM_LABELS,
                "INDUSTRY_LABELS": INDUSTRY_LABELS, "BUREAU_KIND_LABELS": BUREAU_KIND_LABELS,
                "VERIFICATION_STATE_LABELS": VERIFICATION_STATE_LABELS}
