"""District-L's booking history: 1,000,000 bookings of its published instruments, two years back and
twelve weeks ahead, written in bulk (executemany on SQLite, COPY on PostgreSQL) in about a minute.

Bookings keep the district's rules: weekdays only, none on public holidays (the holiday calendar
the app uses), inside the open hours 08:30-12:00 and 13:30-17:30 Asia/Shanghai, on the 30-minute grid,
30 minutes to 4 hours long, and never two of one instrument at once: each instrument's day is cut into
consecutive pieces, and on PostgreSQL the exclusion constraint, added back after the COPY, checks every
row again. Fields agree as the services write them: price = setup fee + rate × hours for district
enterprises, payable = price, the payment state follows the booking state (past and confirmed bookings
were paid by bank transfer, with their Payment rows), check-in and check-out for completed ones, and
each completed booking's use as the day sheet records it: a check-in usage session over its actual
times, tied to it, external as its user type is (a district enterprise is outside the platform).

Instruments are used unevenly, as in a district: HOT instruments are booked nearly every open hour
(about 2,000 bookings each), WARM ones one or two times a week, the rest now and then. FREE instruments
cost nothing and have no bookings ahead: the booking-creation figure books them. One member holds
FEED_EVENTS bookings within the year their private calendar feed covers, for the iCalendar figure."""
from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from core.clock import local_midnight, to_local

log = logging.getLogger(__name__)

BOOKINGS = 1_000_000
PAST_WEEKS, FUTURE_WEEKS = 104, 12  # ahead: within the district's 90-day horizon
HOT, WARM, FREE = 200, 2_000, 400  # instruments
HOT_DAYS = 0.92  # the share of open days a hot instrument is booked on
WARM_PER_WEEK = 1.5  # bookings
_PER_DAY = 4.2  # bookings a whole day holds, on average (see _day_pieces)
FEED_EVENTS = 5_000
FEED_WINDOW = timedelta(days=360)  # the private feed shows bookings that ended within the last year
SEED = 1_000_000

BLOCKS = ((8 * 60 + 30, 12 * 60), (13 * 60 + 30, 17 * 60 + 30))  # the district's open hours, minutes of the day
DURATIONS = (30, 60, 60, 90, 120, 120, 180, 240)  # minutes
PURPOSES = ("常规检测", "来样测试", "研发样品表征", "质量抽检", "对比试验", "方法开发", "客户委托检测")

# Where a past or future booking ended up, with weights; requested bookings are the appointment-only
# instruments' (approval needed), approved ones the others' (payment due).
# the district's cancellation policy (the booking_rules row the migration writes), fixed on each booking
FREE_CANCEL_HOURS, LATE_CANCEL_FEE_PCT, NO_SHOW_FEE_PCT = 24, 50, 100
PAST_STATES = (("completed", 90), ("cancelled", 5), ("no_show", 3), ("expired", 2))
FUTURE_STATES = (("confirmed", 80), ("waiting", 10), ("cancelled", 10))

BOOKINGS_TABLE, PAYMENTS_TABLE, USAGE_TABLE = "bookings", "payments", "usage_sessions"
TABLES = (BOOKINGS_TABLE, PAYMENTS_TABLE, USAGE_TABLE)
USER_TYPE = "district_enterprise"  # every generated booker's
COLUMNS = ("id", "instrument_id", "booker_id", "enterprise_id", "state", "start_at", "end_at", "block_end_at",
           "purpose", "user_type", "needs_operator", "terms_id", "setup_fee_fen", "hourly_rate_fen", "price_fen",
           "voucher_fen", "payable_fen", "payment_method", "payment_state", "decided_at", "confirmed_at",
           "cancelled_at", "cancelled_by_id", "cancellation_fee_fen", "checked_in_at", "checked_out_at",
           "operator_id", "final_price_fen", "sequence", "created_at", "updated_at", "free_cancel_until",
           "late_cancel_fee_fen", "no_show_fee_fen")
PAYMENT_COLUMNS = ("booking_id", "purpose", "method", "status", "amount_fen", "captured_fen", "refunded_fen", "released_fen",
                   "idempotency_key", "refund_ids", "attempt", "transfer_reference", "transfer_received_on",
                   "recorded_by_id", "created_at", "updated_at")
USAGE_COLUMNS = ("instrument_id", "source", "start_at", "end_at", "last_seen_at", "booking_id", "user_id",
                 "organisation_id", "is_external", "is_flagged", "reason", "created_at", "updated_at")


@dataclass
class BookingSet:
    """What was generated, and what the booking figures need from it."""

    count: int = 0
    payments: int = 0
    usage_sessions: int = 0  # of the completed bookings, one each
    seconds: float = 0.0  # generation, insert and ANALYZE
    insert_seconds: float = 0.0
    hot: list[int] = field(default_factory=list)  # instrument ids, booked nearly every open hour
    free: list[int] = field(default_factory=list)  # instrument ids with no fees and nothing booked ahead
    feed_member: str = ""  # e-mail of the member with FEED_EVENTS bookings in the feed's year
    feed_events: int = 0
    members: list[str] = field(default_factory=list)  # e-mails of members who may book (verified enterprises)
    now: datetime | None = None


@dataclass(frozen=True)
class _Instrument:
    id: int
    platform_id: int
    setup_fen: int
    hourly_fen: int
    sharing_mode: str  # open, appointment (the platform approves each booking) or internal (own staff only)

    @property
    def appointment(self) -> bool:
        return self.sharing_mode == "appointment"


def generate(engine: sa.Engine, *, members: list[str], now: datetime, count: int = BOOKINGS) -> BookingSet:
    """Choose the instruments, make FREE of them free of charge, write `count` bookings with their
    payments, committed, and give the planners statistics. `members`: the generated members' e-mails,
    in order."""
    started = time.perf_counter()
    with engine.begin() as connection:
        writer, result = _plan(connection, members=members, now=now, count=count)
    started_insert = time.perf_counter()
    (_write_sqlite if engine.dialect.name == "sqlite" else _write_postgresql)(engine, writer)
    result.insert_seconds = time.perf_counter() - started_insert
    result.count, result.payments, result.usage_sessions = len(writer.rows), len(writer.payment_rows), len(writer.usage_rows)
    _analyze(engine)
    result.seconds = time.perf_counter() - started
    return result


def _analyze(engine: sa.Engine) -> None:
    """Statistics for the planners after the bulk load. On PostgreSQL VACUUM ANALYZE (outside a
    transaction), as autovacuum would soon do: it also sets the visibility map, without which no
    index-only scan skips the heap of freshly written rows. On SQLite ANALYZE, in a transaction that
    commits (core.db begins every one itself)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    else:
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")


def _plan(connection: sa.Connection, *, members: list[str], now: datetime, count: int
          ) -> tuple[_Writer, BookingSet]:
    """The rows to write, in the writer; what the figures need, in the BookingSet."""
    from marketplace.booking.models import Booking

    rng = random.Random(SEED)
    result = BookingSet(now=now)
    instruments = _instruments(connection)
    rng.shuffle(instruments)
    hot, warm, rest = instruments[:HOT], instruments[HOT:HOT + WARM], instruments[HOT + WARM:]
    free_ids = {i.id for i in [i for i in rest if i.sharing_mode == "open"][:FREE]}
    _make_free(connection, free_ids)
    cold = [i if i.id not in free_ids else _Instrument(i.id, i.platform_id, 0, 0, i.sharing_mode) for i in rest]

    bookers = _bookers(connection)
    feed_member, feed_email = _feed_member(connection, members, bookers)
    emails = _member_emails(connection)
    result.members = [emails[user_id] for user_id, _enterprise_id in bookers[:100]]
    days = _open_days(now)
    now_minute = _minutes(now)
    # hot: nearly every open day, whole days; warm: about WARM_PER_WEEK a week; cold: what is left, evenly
    expected = HOT * HOT_DAYS * len(days) * _PER_DAY + WARM * WARM_PER_WEEK / 5 * len(days)
    cold_rate = max(count - expected, 0) * 1.02 / (len(cold) * len(days))
    pieces: list[tuple[_Instrument, int, int]] = []
    for tier, rate, whole_days in ((hot, HOT_DAYS, True), (warm, WARM_PER_WEEK / 5, False), (cold, cold_rate, False)):
        for instrument in tier:
            for day in _chosen(rng, len(days), rate):
                for start, minutes in (_day_pieces(rng.random, days[day]) if whole_days
                                       else [_one_piece(rng.random, days[day])]):
                    if instrument.id not in free_ids or start + minutes <= now_minute:
                        pieces.append((instrument, start, minutes))
    drop = set(rng.sample(range(len(pieces)), len(pieces) - count)) if len(pieces) > count else set()
    since = now_minute - int(FEED_WINDOW.total_seconds() // 60)
    eligible = [n for n, (_i, start, _m) in enumerate(pieces) if n not in drop and start > since]
    feed_rows = set(rng.sample(eligible, FEED_EVENTS))

    first_id = (connection.scalar(sa.select(sa.func.max(Booking.id))) or 0) + 1
    terms_id = connection.scalar(sa.text("SELECT min(id) FROM service_terms WHERE platform_id IS NULL"))
    writer = _Writer(connection.dialect.name, first_id=first_id, now=now_minute, terms_id=terms_id,
                     operators=platform_admins(connection))
    random_, add, booker_count = rng.random, writer.add, len(bookers)
    for n, (instrument, start, minutes) in enumerate(pieces):
        if n not in drop:
            add(random_, instrument, feed_member if n in feed_rows else bookers[int(random_() * booker_count)],
                start, minutes)
    result.hot, result.free = [i.id for i in hot], sorted(free_ids)
    result.feed_member, result.feed_events = feed_email, len(feed_rows)
    return writer, result


def _chosen(rng: random.Random, days: int, rate: float) -> list[int]:
    """The indexes of the days chosen, each with probability `rate` (geometric gaps: no draw per day)."""
    if rate <= 0:
        return []
    if rate >= 1:
        return list(range(days))
    chosen, day, log_miss = [], -1, math.log(1 - rate)
    while True:
        day += 1 + int(math.log(1 - rng.random()) / log_miss)
        if day >= days:
            return chosen
        chosen.append(day)


def _minutes(instant: datetime) -> int:
    """Whole minutes since the epoch, UTC."""
    return int(instant.timestamp() // 60)


def _instruments(connection: sa.Connection) -> list[_Instrument]:
    """The generated instruments in the catalogue's published state (the demo district's keep its own)."""
    rows = connection.execute(sa.text(
        "SELECT id, platform_id, setup_fee_district_enterprise_fen, hourly_rate_district_enterprise_fen, "
        "sharing_mode FROM instruments WHERE state = 'published' AND sharing_mode <> 'internal' "
        "AND asset_number LIKE 'BL-%' ORDER BY id"))
    return [_Instrument(*row) for row in rows]


def _make_free(connection: sa.Connection, ids: set[int]) -> None:
    from marketplace.registry.models import Instrument
    from marketplace.registry.services import FEE_FIELDS

    connection.execute(sa.update(Instrument.__table__).where(Instrument.__table__.c.id.in_(sorted(ids)))
                       .values({name: 0 for name in FEE_FIELDS}))


def _bookers(connection: sa.Connection) -> list[tuple[int, int]]:
    """(user id, enterprise id) of every member of a verified generated enterprise."""
    return [(user_id, enterprise_id) for user_id, enterprise_id in connection.execute(sa.text(
        "SELECT g.user_id, g.organisation_id FROM role_grants g JOIN enterprises e ON e.id = g.organisation_id "
        "JOIN users u ON u.id = g.user_id WHERE g.role = 'enterprise_member' AND e.verification_state = 'verified' "
        "AND u.email LIKE '%@enterprise.bench.test' ORDER BY g.user_id"))]


def _feed_member(connection: sa.Connection, members: list[str], bookers: list[tuple[int, int]]
                 ) -> tuple[tuple[int, int], str]:
    """The first generated member of a verified enterprise, taken out of the other bookers."""
    emails = _member_emails(connection)
    verified = {emails[user_id]: (user_id, enterprise_id) for user_id, enterprise_id in bookers}
    email = next(email for email in members if email in verified)
    bookers.remove(verified[email])
    return verified[email], email


def _member_emails(connection: sa.Connection) -> dict[int, str]:
    return {user_id: email for user_id, email in connection.execute(
        sa.text("SELECT id, email FROM users WHERE email LIKE '%@enterprise.bench.test'"))}


def platform_admins(connection: sa.Connection) -> dict[int, int]:
    return {platform_id: user_id for platform_id, user_id in connection.execute(sa.text(
        "SELECT organisation_id, min(user_id) FROM role_grants WHERE role = 'platform_admin' "
        "GROUP BY organisation_id"))}


def open_days(first: date, last: date) -> list[date]:
    """The days in [first, last) the district's rules open: weekdays that are no public holiday, and the
    official make-up working days (the holiday calendar the app uses)."""
    from core.holidays import DayKind, day_kind

    days, day = [], first
    while day < last:
        kind = day_kind(day)
        if kind == DayKind.MAKEUP_WORKDAY or (day.weekday() < 5 and kind != DayKind.HOLIDAY):
            days.append(day)
        day += timedelta(days=1)
    return days


def _open_days(now: datetime) -> list[int]:
    """The open days from PAST_WEEKS back to FUTURE_WEEKS ahead, as local midnights in minutes since the epoch."""
    today = to_local(now).date()
    days = open_days(today - timedelta(weeks=PAST_WEEKS, days=today.weekday()), today + timedelta(weeks=FUTURE_WEEKS))
    return [_minutes(local_midnight(day)) for day in days]


def _day_pieces(random_: Callable[[], float], midnight: int) -> list[tuple[int, int]]:
    """A day's bookings of one instrument: each open block cut into consecutive pieces with an
    occasional free half hour between them (never overlapping). `random_`: a seeded rng.random."""
    pieces = []
    for opens, closes in BLOCKS:
        at = opens
        while at < closes:
            if random_() < 0.2:
                at += 30
                continue
            minutes = min(DURATIONS[int(random_() * len(DURATIONS))], closes - at)
            pieces.append((midnight + at, minutes))
            at += minutes
    return pieces


def _one_piece(random_: Callable[[], float], midnight: int) -> tuple[int, int]:
    """One booking on a day: a start on the half-hour grid of either block, and a length that fits."""
    opens, closes = BLOCKS[int(random_() * len(BLOCKS))]
    at = opens + 30 * int(random_() * ((closes - opens) // 30))
    return midnight + at, min(DURATIONS[int(random_() * len(DURATIONS))], closes - at)


def _weighted(choices: tuple[tuple[str, int], ...]) -> list[str]:
    return [value for value, weight in choices for _ in range(weight)]


_PAST, _FUTURE = _weighted(PAST_STATES), _weighted(FUTURE_STATES)


class _Writer:
    """The rows of the three tables in the forms the database takes: tuples for SQLite's executemany, lines of
    COPY text for PostgreSQL (NULL as \\N, false as f). Instants are whole minutes since the epoch until
    written out."""

    def __init__(self, dialect: str, *, first_id: int, now: int, terms_id: int, operators: dict[int, int]) -> None:
        self.now, self.terms_id, self.operators = now, terms_id, operators
        self.next_id = first_id
        self.rows: list[tuple | str] = []
        self.payment_rows: list[tuple | str] = []
        self.usage_rows: list[tuple | str] = []
        self.copy_text = dialect == "postgresql"
        self.null, self.false, self.true = ("\\N", "f", "t") if self.copy_text else (None, False, True)
        self.instant = _Instants("%Y-%m-%d ", "{:02d}:{:02d}:00+00" if self.copy_text else "{:02d}:{:02d}:00.000000",
                                 null=self.null)

    def add(self, random_: Callable[[], float], instrument: _Instrument, booker: tuple[int, int], start: int,
            minutes: int) -> None:
        """One booking as the services would have left it, from its start and length (minutes)."""
        booking_id, self.next_id = self.next_id, self.next_id + 1
        now, end, at, null = self.now, start + minutes, self.instant, self.null
        price = instrument.setup_fen + (instrument.hourly_fen * minutes + 30) // 60
        states = _PAST if end <= now else _FUTURE
        state = states[int(random_() * len(states))]
        if state == "waiting":
            state = "requested" if instrument.appointment else "approved"
        # booked 1 to 14 days ahead (within the horizon), before now
        created = max(min(start - 1440 - int(random_() * 14 * 1440), now - 5 - int(random_() * 600)),
                      start - 89 * 1440)
        decided = None if state == "requested" else min(created + 1 + int(random_() * 240), now)  # never ahead
        done = state in _DONE
        paid = done and price > 0
        confirmed = min(created + 60 + int(random_() * 1380), start, now) if done else None
        cancelled = min(created + 60 + int(random_() * 2820), start, now) if state == "cancelled" else None
        completed = state == "completed"
        updated = end if completed else start if state == "expired" else cancelled or confirmed or decided or created
        operator = self.operators.get(instrument.platform_id, null)
        end_text = at(end)
        checked_in = at(start + int(random_() * 10)) if completed else null
        row = (booking_id, instrument.id, booker[0], booker[1], state, at(start), end_text, end_text,
               PURPOSES[booking_id % len(PURPOSES)], USER_TYPE, self.false, self.terms_id,
               instrument.setup_fen, instrument.hourly_fen, price, 0, price,
               "transfer" if paid else "none", "paid" if paid else "due" if price else "not_due",
               at(decided), at(confirmed), at(cancelled), booker[0] if cancelled else null,
               price if state == "no_show" else 0, checked_in, end_text if completed else null, operator if completed else null, price if completed else null,
               _SEQUENCE[state], at(created), at(updated),
               at(start - FREE_CANCEL_HOURS * 60), price * LATE_CANCEL_FEE_PCT // 100, price * NO_SHOW_FEE_PCT // 100)
        self.rows.append("\t".join(map(str, row)) if self.copy_text else row)
        if paid:
            received = at(confirmed)
            payment = (booking_id, "share", "transfer", "transfer_received", price, price, 0, 0,
                       f"bench-transfer-{booking_id}", "[]", 0, f"BL{booking_id:08d}", received[:10], operator,
                       received, received)
            self.payment_rows.append("\t".join(map(str, payment)) if self.copy_text else payment)
        if completed:  # the day sheet's check-in and check-out, as sessions.open_for_booking records them
            usage = (instrument.id, "check_in", checked_in, end_text, end_text, booking_id, booker[0], booker[1],
                     self.true if USER_TYPE != "own_staff" else self.false, self.false, "", end_text, end_text)
            self.usage_rows.append("\t".join(map(str, usage)) if self.copy_text else usage)


def _write_sqlite(engine: sa.Engine, writer: _Writer) -> None:
    """One transaction: the secondary indexes of the three tables dropped, the rows inserted by executemany,
    the indexes made again (a sort each, rather than a million random B-tree inserts), the foreign keys
    checked once for all rows (PRAGMA foreign_key_check) rather than row by row, then COMMIT."""
    raw = engine.raw_connection()
    database = raw.driver_connection  # sqlite3, in autocommit mode (core.db): PRAGMAs apply outside a transaction
    cache_size = database.execute("PRAGMA cache_size").fetchone()[0]
    database.execute("PRAGMA foreign_keys = OFF")
    database.execute("PRAGMA cache_size = -1048576")  # 1 GiB for this connection: index pages stay in memory
    try:
        database.execute("BEGIN IMMEDIATE")
        try:
            indexes = database.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                f"AND tbl_name IN ({', '.join(repr(table) for table in TABLES)})").fetchall()
            for name, _sql in indexes:
                database.execute(f'DROP INDEX "{name}"')
            with _step("executemany"):
                for table, columns, rows in ((BOOKINGS_TABLE, COLUMNS, writer.rows),
                                             (PAYMENTS_TABLE, PAYMENT_COLUMNS, writer.payment_rows),
                                             (USAGE_TABLE, USAGE_COLUMNS, writer.usage_rows)):
                    marks = ", ".join("?" for _ in columns)
                    database.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
            with _step("indexes"):
                for _name, sql in indexes:
                    database.execute(sql)
            broken = [row for table in TABLES
                      for row in database.execute(f"PRAGMA foreign_key_check({table})").fetchmany(5)]
            if broken:
                raise RuntimeError(f"generated rows break foreign keys: {broken}")
            database.execute("COMMIT")
        except BaseException:
            database.execute("ROLLBACK")
            raise
    finally:
        database.execute("PRAGMA foreign_keys = ON")
        database.execute(f"PRAGMA cache_size = {cache_size}")
        raw.close()


def _write_postgresql(engine: sa.Engine, writer: _Writer) -> None:
    """One transaction, as PostgreSQL's "Populating a Database" advises: the secondary indexes, the foreign
    keys and the exclusion constraint of the three tables dropped, COPY … FROM STDIN, then all of them made
    again from their own definitions; re-adding checks every row at once (each foreign key in one join,
    the exclusion constraint over the whole GiST index: no two active bookings of an instrument overlap).
    The ids were given, so the sequence moves on after them."""
    with engine.begin() as connection:
        cursor = connection.connection.driver_connection.cursor()
        try:
            tables = TABLES
            constraints = cursor.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('f', 'x') ORDER BY contype, conname",
                (list(tables),)).fetchall()
            indexes = cursor.execute(
                "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
                "WHERE indrelid = ANY(%s::regclass[]) AND NOT indisprimary AND NOT indisunique "
                "AND indexrelid NOT IN (SELECT conindid FROM pg_constraint WHERE contype = 'x')",
                (list(tables),)).fetchall()
            for table, name, _definition in constraints:
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            for name, _definition in indexes:
                cursor.execute(f"DROP INDEX {name}")
            with _step("COPY"):
                _copy(cursor, BOOKINGS_TABLE, COLUMNS, writer.rows)
                _copy(cursor, PAYMENTS_TABLE, PAYMENT_COLUMNS, writer.payment_rows)
                _copy(cursor, USAGE_TABLE, USAGE_COLUMNS, writer.usage_rows)
            with _step("indexes"):
                for _name, definition in indexes:
                    cursor.execute(definition)
            for table, name, definition in constraints:
                with _step(name):
                    cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{BOOKINGS_TABLE}', 'id'), "
                           f"(SELECT max(id) FROM {BOOKINGS_TABLE}))")
        finally:
            cursor.close()


@contextmanager
def _step(name: str) -> Iterator[None]:
    """Logs how long a step of the write took (INFO, logger bench.bookings)."""
    started = time.perf_counter()
    yield
    log.info("bookings: %s in %.1f s", name, time.perf_counter() - started)


_DONE = frozenset(("completed", "no_show", "confirmed"))  # confirmed once, so paid for (when there is a price)
_SEQUENCE = {"requested": 0, "approved": 1, "cancelled": 2, "expired": 2, "confirmed": 2, "no_show": 3,
             "completed": 4}  # the changes each state took (iCalendar SEQUENCE)


class _Instants:
    """Minutes since the epoch → the text a database column takes, from a per-day and a per-minute-of-day
    part (a strftime per value would take most of the generation's time)."""

    def __init__(self, day_format: str, time_format: str, *, null: str | None) -> None:
        self.day_format, self.null = day_format, null
        self.days: dict[int, str] = {}
        self.times = [time_format.format(minute // 60, minute % 60) for minute in range(24 * 60)]

    def __call__(self, minutes: int | None) -> str | None:
        """The text of an instant, or the writer's NULL."""
        if minutes is None:
            return self.null
        day = minutes // 1440
        prefix = self.days.get(day)
        if prefix is None:
            prefix = self.days[day] = (date(1970, 1, 1) + timedelta(days=day)).strftime(self.day_format)
        return prefix + self.times[minutes - day * 1440]


def _copy(cursor, table: str, columns: tuple[str, ...], lines: list[str]) -> None:
    """COPY … FROM STDIN in text format, 20,000 lines a write."""
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for first in range(0, len(lines), 20_000):
            copy.write("\n".join(lines[first:first + 20_000]) + "\n")
