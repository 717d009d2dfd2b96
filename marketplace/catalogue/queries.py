"""How the catalogue's statements are run, apart from what they find (that is marketplace.catalogue).

Why this module exists: the catalogue figures in docs/benchmarks.md (a search, a page with its filter)
are met on a district-sized catalogue only if the planners are steered and the filter's lists are not
read again on every page. Everything here changes how fast a page comes, never which instruments it
shows: each statement is planned for its values (PLAN_FOR_VALUES), a few matches are sorted apart from
the walk of an index, and each process keeps the filter's lists and the names a search may have meant
for a minute."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from itertools import chain
from typing import TypeVar

import sqlalchemy as sa
from cachetools import TTLCache
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import PLAN_FOR_VALUES
from core.models import Organisation
from marketplace.catalogue.models import CatalogueRelease
from marketplace.registry.models import Instrument, InstrumentCategory

OrderKey = tuple[sa.ColumnElement, bool]  # (expression, descending)

# A browse with at most this many matches sorts them apart on PostgreSQL: walking an index in the sort's
# order may read a long way before it meets a few matches. SQLite's plans are as quick without.
SORT_APART_UP_TO = 2_000


def clauses(order: list[OrderKey]) -> list[sa.ColumnElement]:
    return [expression.desc().nulls_last() if descending else expression.asc() for expression, descending in order]


def search_page(session: Session, matched: sa.Select, counted: sa.Select, order: list[OrderKey], *,
                limit: int, offset: int) -> tuple[list[int], int]:
    """(ids of the page, total) of a keyword search: `matched` selects Instrument.id, `counted` their
    count. All the matches are sorted anyway, so the total rides on the page's rows; past the last page,
    the count alone."""
    rows = session.execute(_sorted_apart(matched, order).add_columns(sa.func.count().over().label("total"))
                           .limit(limit).offset(offset), execution_options=PLAN_FOR_VALUES).all()
    if rows:
        return [row.id for row in rows], rows[0].total
    return [], session.scalar(counted, execution_options=PLAN_FOR_VALUES) or 0


def browse_page(session: Session, browse: sa.Select, counted: sa.Select, order: list[OrderKey], *, limit: int,
                offset: int, dialect: str) -> tuple[list[int], int]:
    """(ids of the page, total) of a browse (no keywords): the count first, then an index walked in the
    sort's order, stopped after the page; a few matches on PostgreSQL sorted apart instead."""
    total = session.scalar(counted, execution_options=PLAN_FOR_VALUES) or 0
    if total <= offset:
        return [], total
    ids_stmt = (_sorted_apart(browse, order) if dialect == "postgresql" and total <= SORT_APART_UP_TO
                else browse.order_by(*clauses(order)))
    return list(session.scalars(ids_stmt.limit(limit).offset(offset), execution_options=PLAN_FOR_VALUES)), total


def _sorted_apart(matched: sa.Select, order: list[OrderKey]) -> sa.Select:
    """`matched` (a select of Instrument.id) in a subquery with the sort's keys, sorted outside it. The
    subquery's OFFSET keeps the planner from merging the two, so it finds the matches first and sorts
    them after, rather than walk an index in the sort's order testing row after row."""
    keys = [expression.label(f"key_{n}") for n, (expression, _descending) in enumerate(order)]
    fenced = matched.add_columns(*keys).offset(0).subquery("matched")
    return select(fenced.c.id).order_by(*clauses(
        [(fenced.c[f"key_{n}"], descending) for n, (_expression, descending) in enumerate(order)]))


# --- lists kept by each process ----------------------------------------------------------------------
# The filter's lists: every catalogue page shows them (and a search by category takes its ids from them,
# so that the plan sees the ids rather than a subquery). The names a search may have meant (its "did you
# mean"): a fuzzy match needs them all in memory, and reading the catalogue's models and manufacturers on
# every search that finds little would cost more than the search. Both change rarely, with the catalogue:
# each process keeps them LISTS_SECONDS. A change this process commits shows at once (_forget_on_commit:
# an instrument, category or organisation changed, or a release published), one that another worker
# commits within that time.

LISTS_SECONDS = 60
LIST_SOURCES = (Instrument, InstrumentCategory, Organisation, CatalogueRelease)  # a platform's name is its organisation's
Lists = TypeVar("Lists")


def _clock() -> float:
    return time.monotonic()


_lists: TTLCache = TTLCache(maxsize=16, ttl=LISTS_SECONDS, timer=lambda: _clock())
_lists_lock = threading.Lock()  # cachetools' caches are not thread-safe; gunicorn's threads share this one


def kept_lists(session: Session, load: Callable[[Session], Lists]) -> Lists:
    """What load(session) reads from the session's database, as it read it at most LISTS_SECONDS ago."""
    key = (str(session.get_bind().engine.url), load.__module__, load.__qualname__)
    with _lists_lock:
        found = _lists.get(key)
    if found is None:
        found = load(session)
        with _lists_lock:
            _lists[key] = found
    return found


def forget_lists() -> None:
    with _lists_lock:
        _lists.clear()


@sa.event.listens_for(Session, "after_flush")
def _note_catalogue_change(session: Session, _flush_context) -> None:
    if any(isinstance(obj, LIST_SOURCES) for obj in chain(session.new, session.dirty, session.deleted)):
        session.info["catalogue_lists_changed"] = True


@sa.event.listens_for(Session, "after_commit")
def _forget_on_commit(session: Session) -> None:
    if session.info.pop("catalogue_lists_changed", False):
        forget_lists()
