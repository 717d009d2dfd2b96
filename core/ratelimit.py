"""Limits on log-in failures and password-reset requests, counted by the limits library behind
Flask-Limiter in fixed windows, each starting at its first count; and a storage for it that keeps the
counters in our own database, so every web worker on every machine shares them:
`RATELIMIT_STORAGE_URI=kequipdb://`."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NoReturn, TypeVar

import sqlalchemy as sa
from flask import current_app, request
from flask_babel import ngettext
from limits import RateLimitItem, parse
from limits.storage import Storage
from sqlalchemy.dialects import postgresql, sqlite

from core.errors import TooManyRequests
from core.extensions import limiter
from core.models import RateLimitCounter

T = TypeVar("T")

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
        with self._engine().connect() as connection:
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
        with self._engine().connect() as connection:
            connection.execute(sa.select(1))
        return True

    def reset(self) -> int | None:
        with self._engine().begin() as connection:
            return connection.execute(sa.delete(RateLimitCounter.__table__)).rowcount

    def clear(self, key: str) -> None:
        with self._engine().begin() as connection:
            connection.execute(sa.delete(RateLimitCounter.__table__).where(RateLimitCounter.key == key))


# --- log-in and password-reset limits ---------------------------------------------------------

def _limit(setting: str) -> RateLimitItem:
    return parse(current_app.config[setting])


def _account(email: str) -> str:
    return email.strip().lower()[:254]


def _address() -> str:
    """The client's address: the last proxy's peer, or the forwarded one with PROXY_FIX."""
    return request.remote_addr or "unknown"


def _refuse(item: RateLimitItem, identifiers: tuple[str, ...], message: Callable[[int], str]) -> NoReturn:
    reset_at = limiter.limiter.get_window_stats(item, *identifiers).reset_time
    seconds = max(1, math.ceil(reset_at - time.time()))
    raise TooManyRequests("rate_limited", message(math.ceil(seconds / 60)), retry_after=seconds)


def limited_login(email: str, check: Callable[[], T | None]) -> T | None:
    """Runs check (the password's; None if it failed) within the log-in limits:
    - LOGIN_FAILURE_LIMIT failures of one account from one address lock that pair until its window
      ends; a success ends the window. The guess is counted before the password is checked, so of
      attempts at the same moment no more than the limit are checked.
    - LOGIN_ADDRESS_FAILURE_LIMIT failures from one address, for any accounts, lock the address until
      its window ends.
    An account is never locked for other addresses: its owner logs in from anywhere else."""
    account, address = _account(email), _address()
    per_pair, per_address = _limit("LOGIN_FAILURE_LIMIT"), _limit("LOGIN_ADDRESS_FAILURE_LIMIT")
    pair, from_address = ("login-pair", account, address), ("login-address", address)
    strategy = limiter.limiter
    if not strategy.test(per_address, *from_address):
        _refuse(per_address, from_address, lambda minutes: ngettext(
            "Too many failed log-ins from your address. Try again in %(num)d minute.",
            "Too many failed log-ins from your address. Try again in %(num)d minutes.", minutes))
    if not strategy.hit(per_pair, *pair):
        _refuse(per_pair, pair, lambda minutes: ngettext(
            "Too many wrong passwords for this account from your address. Try again in %(num)d minute, "
            "or ask for a link to set a new password.",
            "Too many wrong passwords for this account from your address. Try again in %(num)d minutes, "
            "or ask for a link to set a new password.", minutes))
    result = check()
    if result is None:
        strategy.hit(per_address, *from_address)
    else:
        strategy.clear(per_pair, *pair)
    return result


def count_reset_request(email: str) -> None:
    """Each request for a password-reset mail counts, whether or not the account exists (so the answer
    tells nothing): PASSWORD_RESET_ACCOUNT_LIMIT per account keeps its mailbox from being flooded, and
    the links already sent stay valid; PASSWORD_RESET_ADDRESS_LIMIT per address."""
    strategy = limiter.limiter
    for setting, identifiers in (("PASSWORD_RESET_ACCOUNT_LIMIT", ("reset-account", _account(email))),
                                 ("PASSWORD_RESET_ADDRESS_LIMIT", ("reset-address", _address()))):
        item = _limit(setting)
        if not strategy.hit(item, *identifiers):
            _refuse(item, identifiers, lambda minutes: ngettext(
                "Too many requests for a new password. Try again in %(num)d minute; "
                "the links already sent stay valid for their time.",
                "Too many requests for a new password. Try again in %(num)d minutes; "
                "the links already sent stay valid for their time.", minutes))
