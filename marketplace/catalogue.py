"""The public catalogue, read side: search with filters, sorts and pages, the instrument page, the
platform's public page and the photos anyone may see (DESIGN §2.2, issue 4 §3).

Only published instruments and those under maintenance (CATALOGUE_STATES) are in the catalogue. The
price shown and filtered on is the hourly rate for district enterprises, the public price."""
from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, defaultload

from core.errors import NotFound, RuleBroken
from core.models import Industry, Platform, PlatformIndustry, User
from marketplace import search, services
from marketplace.models import CATALOGUE_STATES, Instrument, InstrumentCategory, InstrumentPhoto, SharingMode

MAX_PER_PAGE = 100
MAX_ID = 2**31 - 1  # ids are 32-bit: larger numbers in a URL or query find nothing rather than overflow
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


def _category_ids(code: str) -> sa.Select:
    """A first-level code ("01") takes its sub-categories ("01xx"); a second-level code only itself;
    anything else is no category at all."""
    if not CATEGORY_CODE.fullmatch(code):
        return select(InstrumentCategory.id).where(sa.false())
    condition = (InstrumentCategory.code == code) if len(code) == 4 else sa.or_(
        InstrumentCategory.code == code, InstrumentCategory.code.like(f"{code}__"))
    return select(InstrumentCategory.id).where(condition)


def search_catalogue(session: Session, *, q: str | None = None, category: str | None = None,
                     platform_id: int | None = None, industry: Industry | None = None, large: bool | None = None,
                     sharing_mode: SharingMode | None = None, price_min_fen: int | None = None,
                     price_max_fen: int | None = None, sort: str = CatalogueSort.RELEVANCE, page: int = 1,
                     per_page: int = 20, large_line_fen: int, dialect: str, language: str = "zh_CN") -> CataloguePage:
    """A page of catalogue instruments. `large` True keeps large instruments, False the others; prices
    are the district enterprises' hourly rate in fen, both bounds included (a range upside down finds
    nothing, as any empty range: the OpenAPI document cannot say the bounds depend on each other); an
    unknown category code finds nothing. Three queries (the count, the page's ids, its instruments) and
    one for their photos."""
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
        conditions.append(Instrument.category_id.in_(_category_ids(category)))
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

    words = bool(q and search.tokens(q))
    order = _order(CatalogueSort(sort), language=language, q=q if words else None)
    count_stmt = select(sa.func.count()).select_from(Instrument).where(*conditions)
    if words:
        count_stmt = search.restrict(count_stmt, dialect, q)
        # The matches first, fenced off in a subquery (its OFFSET keeps the planner from merging it),
        # then sorted: else the planner may walk an index in the sort's order and test the search on
        # row after row.
        keys = [expression.label(f"key_{n}") for n, (expression, _descending) in enumerate(order)]
        matched = search.restrict(select(Instrument.id, *keys).where(*conditions), dialect, q).offset(0)
        fenced = matched.subquery("matched")
        ids_stmt = select(fenced.c.id).order_by(*_clauses(
            [(fenced.c[f"key_{n}"], descending) for n, (_expression, descending) in enumerate(order)]))
    else:
        ids_stmt = select(Instrument.id).where(*conditions).order_by(*_clauses(order))
    total = session.scalar(count_stmt) or 0
    # The page's ids from narrow rows, then only those instruments with what the page shows.
    ids = list(session.scalars(ids_stmt.limit(per_page).offset((page - 1) * per_page)))
    loaded = {instrument.id: instrument for instrument in session.scalars(
        select(Instrument).where(Instrument.id.in_(ids))
        .options(defaultload(Instrument.platform).lazyload(Platform.industry_rows)))} if ids else {}
    return CataloguePage(items=[loaded[i] for i in ids], total=total, page=page, per_page=per_page,
                         large_line_fen=large_line_fen)


OrderKey = tuple[sa.ColumnElement, bool]  # (expression, descending)


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


def _clauses(order: list[OrderKey]) -> list[sa.ColumnElement]:
    return [expression.desc().nulls_last() if descending else expression.asc() for expression, descending in order]


def _relevance_tier(q: str) -> sa.ColumnElement[int]:
    """Relevance among the instruments a query matches: the query as typed in a name (2), in the model
    or the manufacturer (1), elsewhere (0: capabilities, or the words apart). Newest first within a tier."""
    needle = q.strip().lower()

    def has(column: sa.ColumnElement) -> sa.ColumnElement[bool]:
        return sa.func.lower(column).contains(needle, autoescape=True)

    return sa.case((sa.or_(has(Instrument.name_zh), has(Instrument.name_en)), 2),
                   (sa.or_(has(Instrument.model), has(Instrument.manufacturer)), 1), else_=0)


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
