"""The public catalogue, read side: search with filters, sorts and pages, the instrument page, the
platform's public page and the photos anyone may see. How its statements are run fast is
marketplace.catalogue.queries.

Only published instruments and those under maintenance (CATALOGUE_STATES) are in the catalogue. The
price shown and filtered on is the hourly rate for district enterprises, the public price."""
from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import portion
import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, defaultload, joinedload

from core.errors import NotFound, RuleBroken
from core.models import Industry, Platform, PlatformIndustry, User
from marketplace.booking.availability import MAX_RANGE, district_rules, open_intervals
from marketplace.booking.models import ACTIVE_BOOKING_STATES, Booking, BookingRules, MaintenanceWindow
from marketplace.catalogue import queries
from marketplace.registry import search, services
from marketplace.registry.models import (
    CATALOGUE_STATES,
    Instrument,
    InstrumentCategory,
    InstrumentPhoto,
    InstrumentState,
    SharingMode,
)

MAX_PER_PAGE = 100
SUGGEST_BELOW = 3  # a search that finds fewer instruments than this looks for what its query may have meant
CATEGORY_CODE = re.compile(r"[0-9]{2}(?:[0-9]{2})?")
# the price the catalogue shows, filters and sorts on: the hourly rate for district enterprises
PUBLIC_PRICE = Instrument.hourly_rate_district_enterprise_fen


class CatalogueSort(StrEnum):
    RELEVANCE = "relevance"  # only with a query; without one, as NEWEST
    NAME = "name"
    PRICE = "price"
    NEWEST = "newest"


@dataclass(frozen=True)
class CataloguePage:
    """A page of results; pages, iter_pages() and total as templates/_macros.html `pager` reads them."""

    items: list[Instrument]
    total: int
    page: int
    per_page: int
    large_line_fen: int
    did_you_mean: str | None = None  # the name a search that found little may have meant (a model, a maker, a term)

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.per_page) if self.total else 0

    def is_large(self, instrument: Instrument) -> bool:
        return is_large(instrument, line_fen=self.large_line_fen)

    def iter_pages(self, *, left_edge: int = 2, left_current: int = 2, right_current: int = 4,
                   right_edge: int = 2) -> Iterator[int | None]:
        """Page numbers to link, None for a gap (as Flask-SQLAlchemy's Pagination)."""
        last = 0
        for number in range(1, self.pages + 1):
            if (number <= left_edge or self.page - left_current <= number <= self.page + right_current
                    or number > self.pages - right_edge):
                if last + 1 != number:
                    yield None
                yield number
                last = number


def is_large(instrument: Instrument, *, line_fen: int) -> bool:
    """A large instrument: original value at or above the district's line."""
    return instrument.original_value_fen >= line_fen


def _category_ids(lists: FilterLists, code: str) -> list[int]:
    """A first-level code ("01") takes its sub-categories ("01xx"); a second-level code only itself;
    anything else is no category at all."""
    if not CATEGORY_CODE.fullmatch(code):
        return []
    return [c.id for c in lists.categories
            if c.code == code or (len(code) == 2 and len(c.code) == 4 and c.code.startswith(code))]


def search_catalogue(session: Session, *, q: str | None = None, category: str | None = None,
                     platform_id: int | None = None, industry: Industry | None = None, large: bool | None = None,
                     sharing_mode: SharingMode | None = None, price_min_fen: int | None = None,
                     price_max_fen: int | None = None, free_from: datetime | None = None,
                     free_to: datetime | None = None, sort: str = CatalogueSort.RELEVANCE, page: int = 1,
                     per_page: int = 20, large_line_fen: int, dialect: str, language: str = "zh_CN") -> CataloguePage:
    """A page of catalogue instruments. `large` True keeps large instruments, False the others; prices
    are the district enterprises' hourly rate in fen, both bounds included (a range upside down finds
    nothing, as any empty range: the OpenAPI document cannot say the bounds depend on each other); an
    unknown category code finds nothing; free_from and free_to (both or neither, aware) keep the
    published instruments free for the whole of that time (free_between). Two queries (the page's ids,
    then its instruments with their platforms, categories and photos) and, for a browse, the count (a
    keyword search's total comes with its ids). A keyword search that finds fewer than SUGGEST_BELOW
    instruments also says what its query may have meant, if a model, manufacturer or synonym of the
    catalogue is a letter or two off it."""
    if sort not in set(CatalogueSort):
        raise RuleBroken("invalid_sort", _("Unknown sort order."), field="sort")
    if page < 1:
        raise RuleBroken("invalid_page", _("Pages start at 1."), field="page")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise RuleBroken("invalid_per_page", _("Between 1 and %(n)d results a page.", n=MAX_PER_PAGE),
                         field="per_page")

    price = PUBLIC_PRICE
    conditions: list[sa.ColumnElement[bool]] = [Instrument.state.in_(CATALOGUE_STATES)]
    if category:
        conditions.append(Instrument.category_id.in_(_category_ids(filter_lists(session), category)))
    if platform_id is not None:
        conditions.append(Instrument.platform_id == platform_id)
    if industry is not None:
        conditions.append(Instrument.platform_id.in_(
            select(PlatformIndustry.platform_id).where(PlatformIndustry.industry == industry)))
    if large is not None:
        conditions.append(Instrument.original_value_fen >= large_line_fen if large
                          else Instrument.original_value_fen < large_line_fen)
    if sharing_mode is not None:
        conditions.append(Instrument.sharing_mode == sharing_mode)
    if price_min_fen is not None:
        conditions.append(price >= price_min_fen)
    if price_max_fen is not None:
        conditions.append(price <= price_max_fen)
    if free_from is not None or free_to is not None:
        conditions.extend(free_between(session, free_from, free_to))

    words = bool(q and search.tokens(q))
    order = _order(CatalogueSort(sort), language=language, q=q if words else None)
    found = select(Instrument.id).where(*conditions)
    counted = select(sa.func.count()).select_from(Instrument).where(*conditions)
    # the page's ids from narrow rows, then only those instruments with what the page shows
    if words:
        ids, total = queries.search_page(
            session, search.restrict(found, dialect, q), search.restrict(counted, dialect, q), order,
            limit=per_page, offset=(page - 1) * per_page)
    else:
        ids, total = queries.browse_page(session, found, counted, order, limit=per_page,
                                                   offset=(page - 1) * per_page, dialect=dialect)
    # in one statement: each instrument with its platform, category and parent category, and photos
    loaded = {instrument.id: instrument for instrument in session.scalars(
        select(Instrument).where(Instrument.id.in_(ids))
        .options(defaultload(Instrument.platform).lazyload(Platform.industry_rows),
                 defaultload(Instrument.category).joinedload(InstrumentCategory.parent),
                 joinedload(Instrument.photos))).unique()} if ids else {}
    did_you_mean = search.closest(q, suggestion_names(session)) if words and total < SUGGEST_BELOW else None
    return CataloguePage(items=[loaded[i] for i in ids], total=total, page=page, per_page=per_page,
                         large_line_fen=large_line_fen, did_you_mean=did_you_mean)


def check_free_range(free_from: datetime | None, free_to: datetime | None) -> None:
    """Both or neither; the end after the start; at most MAX_RANGE long."""
    if (free_from is None) != (free_to is None):
        missing = "free_to" if free_to is None else "free_from"
        raise RuleBroken("invalid_range", _("Give both the start and the end of the free time."), field=missing)
    if free_from is not None and free_to <= free_from:
        raise RuleBroken("invalid_range", _("The end must be after the start."), field="free_to")
    if free_from is not None and free_to - free_from > MAX_RANGE:
        raise RuleBroken("invalid_range", _("A range spans at most %(n)s days.", n=MAX_RANGE.days), field="free_to")


def free_between(session: Session, start: datetime | None, end: datetime | None) -> list[sa.ColumnElement[bool]]:
    """Conditions on Instrument: published, open for the whole of [start, end) by its effective rules
    (weekly hours, closed on public holidays, open on make-up days), and no active booking (its buffer
    included) nor maintenance window meets that time.

    The open hours are worked out in Python once for the district's defaults and once for each set of
    hours among the few instruments with rules of their own; those that differ from the district become
    a list of ids to leave out (the district is open) or to keep (it is not). Bookings and maintenance
    are each one uncorrelated subquery of the instruments they make busy, read once per statement from
    the (state, start_at) index rather than probed instrument by instrument. A booking lasts at most its
    rules' max_minutes + buffer_minutes (the rules as they are now: a booking made under longer limits
    since shortened may be missed), so only bookings starting that long before `start` can reach into
    it: the district's limit for every instrument, a longer one only for the few whose rules allow it."""
    check_free_range(start, end)
    wanted = portion.closedopen(start, end)
    district = district_rules(session)
    district_open = open_intervals(district, start, end) == wanted
    verdicts: dict[tuple[str, bool], bool] = {}
    exceptions: list[int] = []
    longer: dict[int, int] = {}  # instrument id → minutes a booking of it may take, where more than the district's
    district_span = district.max_minutes + district.buffer_minutes
    for rules in session.scalars(select(BookingRules).where(BookingRules.instrument_id.is_not(None))):
        key = (json.dumps(rules.open_hours, sort_keys=True), rules.closed_on_holidays)
        if key not in verdicts:
            verdicts[key] = open_intervals(rules, start, end) == wanted
        if verdicts[key] != district_open:
            exceptions.append(rules.instrument_id)
        if rules.max_minutes + rules.buffer_minutes > district_span:
            longer[rules.instrument_id] = rules.max_minutes + rules.buffer_minutes
    if district_open:
        opened = Instrument.id.not_in(exceptions) if exceptions else sa.true()
    else:
        opened = Instrument.id.in_(exceptions) if exceptions else sa.false()

    def booked(span_minutes: int) -> sa.Select:
        return select(Booking.instrument_id).where(
            Booking.state.in_(ACTIVE_BOOKING_STATES), Booking.start_at > start - timedelta(minutes=span_minutes),
            Booking.start_at < end, Booking.block_end_at > start)

    maintained = select(MaintenanceWindow.instrument_id).where(MaintenanceWindow.start_at < end,
                                                               MaintenanceWindow.end_at > start)
    conditions = [Instrument.state == InstrumentState.PUBLISHED, opened, Instrument.id.not_in(booked(district_span)),
                  Instrument.id.not_in(maintained)]
    if longer:
        conditions.append(Instrument.id.not_in(
            booked(max(longer.values())).where(Booking.instrument_id.in_(list(longer)))))
    return conditions


OrderKey = queries.OrderKey


def _order(sort: CatalogueSort, *, language: str, q: str | None) -> list[OrderKey]:
    newest = [(Instrument.published_at, True), (Instrument.id, True)]
    if sort == CatalogueSort.NAME:
        if language == "en":  # English names first, those without one after them by their Chinese name
            return [(sa.case((Instrument.name_en == "", 1), else_=0), False), (Instrument.name_en, False),
                    (Instrument.name_zh, False), (Instrument.id, False)]
        return [(Instrument.name_zh, False), (Instrument.name_en, False), (Instrument.id, False)]
    if sort == CatalogueSort.PRICE:
        return [(PUBLIC_PRICE, False), (Instrument.name_zh, False), (Instrument.id, False)]
    if sort == CatalogueSort.RELEVANCE and q:
        return [(_relevance_tier(q), True), *newest]
    return newest


def _relevance_tier(q: str) -> sa.ColumnElement[int]:
    """Relevance among the instruments a query matches: for a query that names a kind of instrument
    (SEM, qPCR), the instruments of that kind (3: a Chinese name of the kind in theirs); the query as typed,
    or a synonym of the whole of it, in a name (2), in the model or the manufacturer (1); elsewhere (0:
    capabilities, or the words apart). Newest first within a tier."""
    names = {q.strip().lower(), *(name.lower() for name in search.group_of(q))}
    needles = sorted(name for name in names if not any(other != name and other in name for other in names))

    def has(column: sa.ColumnElement, names: list[str]) -> sa.ColumnElement[bool]:
        return sa.or_(*(sa.func.lower(column).contains(name, autoescape=True) for name in names))

    kind = search.kind_names(q)
    return sa.case(*([(has(Instrument.name_zh, kind), 3)] if kind else []),
                   (sa.or_(has(Instrument.name_zh, needles), has(Instrument.name_en, needles)), 2),
                   (sa.or_(has(Instrument.model, needles), has(Instrument.manufacturer, needles)), 1), else_=0)


# --- single records (an instrument: services.get_instrument, which hides what the caller may not see)

def get_public_platform(session: Session, platform_id: int) -> Platform:
    platform = session.get(Platform, platform_id)
    if platform is None:
        raise NotFound("not_found", _("There is no such platform."))
    return platform


def get_visible_photo(session: Session, stored_name: str, user: User | None) -> InstrumentPhoto:
    """The photo, if the caller may see its instrument."""
    photo = session.scalar(select(InstrumentPhoto).where(InstrumentPhoto.stored_name == stored_name))
    if photo is None or not services.can_see(user, photo.instrument):
        raise NotFound("not_found", _("There is no such photo."))
    return photo


def list_catalogue_platforms(session: Session) -> list[sa.Row]:
    """(id, name) of the platforms with at least one instrument in the catalogue, by name (for the filter)."""
    has_instruments = select(Instrument.id).where(Instrument.platform_id == Platform.id,
                                                  Instrument.state.in_(CATALOGUE_STATES)).exists()
    return list(session.execute(select(Platform.id, Platform.name).where(has_instruments).order_by(Platform.name)))


# --- the filter's lists -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CategoryOption:
    id: int
    code: str
    name_zh: str
    name_en: str
    is_sub: bool  # a second-level category

    def name(self, language: str) -> str:
        return self.name_en if language == "en" else self.name_zh


@dataclass(frozen=True, slots=True)
class FilterLists:
    """What the catalogue's filter offers: every category (whose ids a search by category takes from
    here), and the platforms with instruments in the catalogue as (id, name)."""

    categories: tuple[CategoryOption, ...]
    platforms: tuple[tuple[int, str], ...]


def filter_lists(session: Session) -> FilterLists:
    """The catalogue filter's lists, of the session's database (kept by each process for a minute:
    queries.kept_lists)."""
    return queries.kept_lists(session, _read_filter_lists)


def _read_filter_lists(session: Session) -> FilterLists:
    return FilterLists(
        categories=tuple(CategoryOption(c.id, c.code, c.name_zh, c.name_en, c.parent_id is not None)
                         for c in services.list_categories(session)),
        platforms=tuple((row.id, row.name) for row in list_catalogue_platforms(session)))


# --- what a search may have meant -------------------------------------------------------------------

def suggestion_names(session: Session) -> tuple[str, ...]:
    """The models and manufacturers of the catalogue and the synonyms, that a search's "did you mean"
    chooses from (kept by each process for a minute: queries.kept_lists)."""
    return queries.kept_lists(session, _read_suggestion_names)


def _read_suggestion_names(session: Session) -> tuple[str, ...]:
    rows = session.execute(select(Instrument.model, Instrument.manufacturer)
                           .where(Instrument.state.in_(CATALOGUE_STATES)).distinct()).all()
    return search.suggestion_names(sorted({row.model for row in rows}), sorted({row.manufacturer for row in rows}))
