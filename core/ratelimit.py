"""A storage for the limits library (behind Flask-Limiter) that keeps fixed-window counters in
our own database, so every web worker on every machine shares them: `RATELIMIT_STORAGE_URI=kequipdb://`."""
from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa
from flask import current_app, g, request
from flask_limiter.util import get_remote_address
from limits.storage import Storage
from sqlalchemy.dialects import postgresql, sqlite

from core.extensions import db, limiter
from core.models import RateLimitCounter

_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class DatabaseStorage(Storage):
    STORAGE_SCHEME = ["kequipdb"]

    @property
    def base_exceptions(self) -> type[Exception]:
        return sa.exc.SQLAlchemyError

    @staticmethod
    def _engine() -> sa.Engine:
        from core.extensions import db

        return db.engine

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        engine = self._engine()
        table = RateLimitCounter.__table__
        stmt = _INSERTS[engine.dialect.name](table).values(key=key, count=amount, expires_at=now + expiry)
        expired = table.c.expires_at <= now
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"count": sa.case((expired, amount), else_=table.c.count + amount),
                  "expires_at": sa.case((expired, now + expiry), else_=table.c.expires_at)},
        ).returning(table.c.count)
        with engine.begin() as connection:
            return connection.execute(stmt).scalar_one()

    def _row(self, key: str) -> tuple[int, float] | None:
        table = RateLimitCounter.__table__
        with self._engine().connect().execution_options(sqlite_deferred=True) as connection:
            row = connection.execute(sa.select(table.c.count, table.c.expires_at)
                                     .where(table.c.key == key)).first()
        return None if row is None or row.expires_at <= time.time() else (row.count, row.expires_at)

    def get(self, key: str) -> int:
        row = self._row(key)
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row[1] if row else time.time()

    def check(self) -> bool:
        with self._engine().connect().execution_options(sqlite_deferred=True) as connection:
            connection.execute(sa.select(1))
        return True

    def reset(self) -> int | None:
        with self._engine().begin() as connection:
            return connection.execute(sa.delete(RateLimitCounter.__table__)).rowcount

    def clear(self, key: str) -> None:
        with self._engine().begin() as connection:
            connection.execute(sa.delete(RateLimitCounter.__table__).where(RateLimitCounter.key == key))


def _login_limit() -> str:
    return current_app.config["LOGIN_FAILURE_LIMIT"]


def _login_email() -> str:
    body = request.get_json(silent=True) if request.is_json else None
    email = request.form.get("email") or (body.get("email") if isinstance(body, dict) else None) or ""
    return str(email).strip().lower()[:254]


def _login_failed(response) -> bool:
    """Whether the view set g.login_failed. If so, the page's own transaction ends before the failure
    is counted: on SQLite it holds the write lock (BEGIN IMMEDIATE) that counting needs, in this thread."""
    if not g.get("login_failed", False):
        return False
    db.session.rollback()
    return True


def limit_login_failures(view: Callable) -> Callable:
    """More than LOGIN_FAILURE_LIMIT failures for one account or one address → 429. Only failures
    count: the view sets g.login_failed."""
    by_account = limiter.limit(_login_limit, key_func=lambda: f"login-account:{_login_email()}",
                               methods=["POST"], deduct_when=_login_failed)
    by_address = limiter.limit(_login_limit, key_func=lambda: f"login-address:{get_remote_address()}",
                               methods=["POST"], deduct_when=_login_failed)
    return by_address(by_account(view))
