"""Marketplace pages: the public catalogue. No login: search, the instrument page, its photos and the
platform's public page."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from flask import current_app, render_template, request, send_from_directory
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateTimeLocalField, IntegerField, SearchField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, NumberRange, Optional, ValidationError

from core.auth import AccessRule, current_principal, public
from core.clock import from_local, to_local
from core.db import utcnow
from core.extensions import current_language, db
from core.holidays import DAY_KIND_LABELS
from core.inputs import MAX_ID, page_number
from core.models import INDUSTRY_LABELS, Industry
from core.services import administers
from core.templating import NavItem
from marketplace.blueprints import bp
from marketplace.booking import services as bookings
from marketplace.booking import week
from marketplace.booking.availability import MAX_RANGE, effective_rules
from marketplace.catalogue import services as catalogue_service
from marketplace.catalogue.services import CatalogueSort, FilterLists
from marketplace.registry import services
from marketplace.registry.models import SHARING_MODE_LABELS, SharingMode

NAV: list[NavItem] = [NavItem("marketplace.catalogue", _l("Instrument catalogue"), AccessRule(None))]

PER_PAGE = 20
MAX_YUAN = 1_000_000_000
SORT_LABELS = {CatalogueSort.RELEVANCE: _l("Relevance"), CatalogueSort.NAME: _l("Name"),
               CatalogueSort.PRICE: _l("Price, lowest first"), CatalogueSort.NEWEST: _l("Newest first")}
# the fixed choices (lazy labels: translated as the page is drawn)
INDUSTRY_CHOICES = (SelectChoice("", _l("All industries")),
                    *(SelectChoice(industry.value, label) for industry, label in INDUSTRY_LABELS.items()))
SHARING_MODE_CHOICES = (SelectChoice("", _l("Any sharing mode")),
                        *(SelectChoice(mode.value, label) for mode, label in SHARING_MODE_LABELS.items()))
SORT_CHOICES = tuple(SelectChoice(sort.value, label) for sort, label in SORT_LABELS.items())


def _optional_int(value: object) -> int | None:
    """"" → None, "12" → 12; anything else raises ValueError, which becomes the field's error."""
    if value in (None, ""):
        return None
    number = int(value)
    if not 0 < number <= MAX_ID:
        raise ValueError(value)
    return number


class CatalogueSearchForm(FlaskForm):
    """The search form; GET, so the URL holds the whole search. Prices in yuan (the API takes fen)."""

    class Meta:
        csrf = False

    q = SearchField(_l("Keywords"), validators=[Optional(), Length(max=200)])
    category = SelectField(_l("Category"), choices=[], default="")
    platform_id = SelectField(_l("Platform"), coerce=_optional_int, choices=[], validate_choice=False)
    industry = SelectField(_l("Industry"), default="", choices=INDUSTRY_CHOICES)
    sharing_mode = SelectField(_l("Sharing mode"), default="", choices=SHARING_MODE_CHOICES)
    large = BooleanField(_l("Large instruments only"))
    min_yuan = IntegerField(_l("Hourly rate from (yuan)"), validators=[Optional(), NumberRange(min=0, max=MAX_YUAN)])
    max_yuan = IntegerField(_l("Hourly rate up to (yuan)"), validators=[Optional(), NumberRange(min=0, max=MAX_YUAN)])
    free_from = DateTimeLocalField(_l("Free from"), format="%Y-%m-%dT%H:%M", validators=[Optional()], description=_l(
        "Beijing time: only instruments open and neither booked nor under maintenance for the whole time"))
    free_to = DateTimeLocalField(_l("Free until"), format="%Y-%m-%dT%H:%M", validators=[Optional()])
    sort = SelectField(_l("Sort by"), choices=SORT_CHOICES, default=CatalogueSort.RELEVANCE.value)

    def fill(self, lists: FilterLists, language: str) -> None:
        """The choices that come from the database: categories and platforms."""
        self.category.choices = [SelectChoice("", _("All categories")), *(
            SelectChoice(c.code, f"\u2003{c.name(language)}" if c.is_sub else c.name(language))
            for c in lists.categories)]
        self.platform_id.choices = [SelectChoice("", _("All platforms")), *(
            SelectChoice(str(platform_id), name) for platform_id, name in lists.platforms)]

    def validate_max_yuan(self, field: IntegerField) -> None:
        if field.data is not None and self.min_yuan.data is not None and field.data < self.min_yuan.data:
            raise ValidationError(_("The highest price is below the lowest."))

    def validate_free_from(self, field: DateTimeLocalField) -> None:
        if field.data is None:  # not a date and time: the field says so already
            return
        if not _within_years(field.data):
            raise ValidationError(_("Give a time between the years 2000 and 2099."))
        if not _given(self.free_to):
            raise ValidationError(_("Give both the start and the end of the free time."))

    def validate_free_to(self, field: DateTimeLocalField) -> None:
        if field.data is None:
            return
        if not _within_years(field.data):
            raise ValidationError(_("Give a time between the years 2000 and 2099."))
        if not _given(self.free_from):
            raise ValidationError(_("Give both the start and the end of the free time."))
        start = self.free_from.data
        if not _within_years(start):  # the start's own error shows
            return
        if field.data <= start:
            raise ValidationError(_("The end must be after the start."))
        if field.data - start > MAX_RANGE:
            raise ValidationError(_("A range spans at most %(n)s days.", n=MAX_RANGE.days))

    def filters(self) -> dict:
        """The search_catalogue arguments this form asks for."""
        return {"q": (self.q.data or "").strip() or None, "category": self.category.data or None,
                "platform_id": self.platform_id.data,
                "industry": Industry(self.industry.data) if self.industry.data else None,
                "sharing_mode": SharingMode(self.sharing_mode.data) if self.sharing_mode.data else None,
                "large": True if self.large.data else None,
                "price_min_fen": None if self.min_yuan.data is None else self.min_yuan.data * 100,
                "price_max_fen": None if self.max_yuan.data is None else self.max_yuan.data * 100,
                "free_from": from_local(self.free_from.data) if self.free_from.data else None,
                "free_to": from_local(self.free_to.data) if self.free_to.data else None,
                "sort": self.sort.data or CatalogueSort.RELEVANCE}


def _given(field: DateTimeLocalField) -> bool:
    return bool(field.raw_data and field.raw_data[0])


def _within_years(value: datetime | None) -> bool:
    """Times the calendar arithmetic takes without overflow."""
    return value is not None and 2000 <= value.year <= 2099


def _dialect() -> str:
    return db.session.get_bind().dialect.name


@bp.route("/catalogue")
@public
def catalogue():
    language = current_language()
    form = CatalogueSearchForm(request.args)
    form.fill(catalogue_service.filter_lists(db.session), language)
    page = None
    if form.validate():
        page = catalogue_service.search_catalogue(
            db.session, **form.filters(), page=page_number(), per_page=PER_PAGE,
            large_line_fen=current_app.config["LARGE_INSTRUMENT_LINE_FEN"], dialect=_dialect(), language=language)
    share_args = {name: value for name, value in request.args.items() if name in form._fields and value}
    # the same search with the query it may have meant
    did_you_mean_args = {**share_args, "q": page.did_you_mean} if page and page.did_you_mean else None
    return render_template("marketplace/catalogue.html", form=form, page=page, share_args=share_args,
                           did_you_mean_args=did_you_mean_args,
                           show_filters=bool(form.errors or set(share_args) - {"q", "sort"}), language=language)


@bp.route("/instruments/<id:instrument_id>")
@public
def instrument(instrument_id: int):
    user, now = current_principal(), utcnow()
    item = services.get_instrument(db.session, instrument_id, user)
    rules = effective_rules(db.session, item)
    needs_approval = bookings.needs_approval(item, rules)
    monday = week.monday_of(_week_arg() or to_local(now).date())
    rows, grid = week.calendar_days(db.session, item, rules, [monday + timedelta(days=n) for n in range(7)], now=now)
    return render_template("marketplace/instrument.html", instrument=item, language=current_language(),
                           is_large=catalogue_service.is_large(
                               item, line_fen=current_app.config["LARGE_INSTRUMENT_LINE_FEN"]),
                           may_manage=administers(user, item.platform_id),
                           is_staff=bookings.is_platform_staff(user, item.platform_id), cancel_rules=rules,
                           cancel_terms=None, needs_approval=needs_approval, rules=rules, rows=rows, grid=grid,
                           monday=monday,
                           today=to_local(now).date(), rule_lines=week.rules_in_words(rules, needs_approval=needs_approval),
                           previous_week=_other_week(monday, -7), next_week=_other_week(monday, 7),
                           reasons=week.slot_reason_texts(), DAY_KIND_LABELS=DAY_KIND_LABELS)


def _other_week(monday: date, days: int) -> date | None:
    other = monday + timedelta(days=days)
    return other if week.FIRST_DAY <= other <= week.LAST_DAY else None


def _week_arg() -> date | None:
    """?week=YYYY-MM-DD: a day of the week to show."""
    try:
        day = date.fromisoformat(request.args.get("week", ""))
    except ValueError:
        return None
    return day if week.FIRST_DAY <= day <= week.LAST_DAY else None


@bp.route("/instruments/photos/<stored_name>")
@public
def instrument_photo(stored_name: str) -> ResponseReturnValue:
    photo = catalogue_service.get_visible_photo(db.session, stored_name, current_principal())
    public_photo = photo.instrument.is_in_catalogue
    response = send_from_directory(Path(current_app.config["UPLOAD_DIR"]) / "instruments", photo.stored_name,
                                   max_age=3600 if public_photo else 0)
    if not public_photo:
        response.cache_control.private = True
    return response


@bp.route("/platforms/<id:platform_id>")
@public
def platform_public(platform_id: int):
    platform = catalogue_service.get_public_platform(db.session, platform_id)
    page = catalogue_service.search_catalogue(
        db.session, platform_id=platform.id, sort=CatalogueSort.NAME, page=page_number(), per_page=PER_PAGE,
        large_line_fen=current_app.config["LARGE_INSTRUMENT_LINE_FEN"], dialect=_dialect(),
        language=current_language())
    return render_template("marketplace/platform_public.html", platform=platform, page=page,
                           language=current_language())
