"""The innovation vouchers' figures, one-off figures run in-process on district-L after the
server has stopped, in this order:

- a voucher part held during booking creation: marketplace.booking.services.book_instrument, committed, with and
  without a voucher, in interleaved pairs on the same kind of instrument and slot; the p95 of each, and
  what the voucher adds;
- a claim gathering 10,000 voucher uses: vouchers.claims.services.create_provider_claim over 10,000 completed
  bookings of one platform with consumed voucher parts, committed;
- the nightly ledger check: vouchers.ledger.mismatched_vouchers over 1,000,000 ledger entries, with one
  voucher's balance tampered with beforehand so that the check has something to find.

Each figure's target is in ONE_OFFS.

What each needs is written first, untimed and committed: the first one's vouchers through the services
(application, approval); the others' with bulk inserts (executemany on SQLite, COPY on PostgreSQL) that
agree with the ledger: each voucher's columns are the sums of its entries (issue, hold, consume, release,
redeem, expire), a programme's issued_fen the sum of its vouchers, and a booking paid partly by a voucher
has its voucher part (held when it was booked, consumed when it was completed) taken off what the
enterprise paid."""
from __future__ import annotations

import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

from bench.bookings import open_days
from bench.dataset import Dataset, _insert_returning_ids, bench_app
from bench.figures import _expect
from bench.runner import OneOff, Timing
from core.clock import local_midnight, to_local

# A ledger entry's columns, as vouchers.ledger.post writes them (the rest is the key)
ENTRY_COLUMNS = ("voucher_id", "kind", "amount_fen", "booking_id", "claim_id", "platform_id", "actor_id",
                 "actor_label", "at")
# The voucher use of a booking, as vouchers.services.hold_for_booking and consume_for_booking write it
USE_COLUMNS = ("booking_id", "voucher_id", "platform_id", "instrument_name_zh", "instrument_name_en", "asset_number",
               "category_code", "start_at", "end_at", "price_fen", "ratio_bp", "checked_in_at", "checked_out_at",
               "completed_at", "final_price_fen", "is_paid")

BUREAU = "bureau@kequip.test"  # the demo district's bureau admin issues the benchmark's vouchers
SEED = 6


def _in_app(dataset: Dataset, measure: Callable[[], list[Timing]]) -> list[Timing]:
    """Run measure() in an app context on the benchmark database; the engine is disposed after."""
    from core.extensions import db

    app = bench_app(dataset.url)
    with app.app_context():
        try:
            return measure()
        finally:
            db.session.remove()
            db.engine.dispose()


def _percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


# --- a voucher part held during booking creation ---------------------------------------------------

HOLD_PAIRS, HOLD_WARMUPS = 300, 20  # bookings with a voucher and as many without, after the warm-up pairs
HOLDERS = 20  # members of verified enterprises that get a voucher
BOOKABLE = 100  # priced instruments with nothing booked ahead, booked in turn
HOLD_HOURS = ("09:00", "14:00")  # two-hour slots, within the district's open hours


def voucher_hold(dataset: Dataset) -> list[Timing]:
    """Untimed: a programme and HOLDERS vouchers issued through the services, and the free slots of
    BOOKABLE priced instruments. Timed, pair by pair (the order alternating): book_instrument with its
    commit, by the same member on a fresh slot, once with the member's voucher and once without."""
    return _in_app(dataset, lambda: _measure_hold(dataset))


def _measure_hold(dataset: Dataset) -> list[Timing]:
    holders = _issue_vouchers(dataset)
    slots = _free_slots(dataset)
    plain: list[float] = []
    with_voucher: list[float] = []
    for number in range(HOLD_WARMUPS + HOLD_PAIRS):
        user_id, voucher_id = holders[number % len(holders)]
        pair = [(plain, None), (with_voucher, voucher_id)]
        for timings, voucher in pair if number % 2 else reversed(pair):
            seconds = _timed_booking(user_id, next(slots), voucher)
            if number >= HOLD_WARMUPS:
                timings.append(seconds * 1000)
    without_p95, with_p95 = _percentile(plain, 95), _percentile(with_voucher, 95)
    label = (f"p95 without a voucher {without_p95:.1f} ms, with one {with_p95:.1f} ms (p50 "
             f"{statistics.median(plain):.1f} / {statistics.median(with_voucher):.1f} ms; {HOLD_PAIRS} bookings "
             "each way)")
    return [Timing(label, (with_p95 - without_p95) / 1000)]


def _issue_vouchers(dataset: Dataset) -> list[tuple[int, int]]:
    """A programme open today and a voucher of ¥1,000,000 for each of the first HOLDERS members, applied
    for and approved through vouchers.services. Returns (user id, voucher id) pairs."""
    from core.audit import Actor
    from core.db import unit_of_work, utcnow
    from core.models import Role, User
    from vouchers import services

    now = utcnow()
    today = to_local(now).date()
    with unit_of_work() as session:
        bureau = session.scalar(sa.select(User).where(User.email == BUREAU))
        actor = Actor.system("bench")
        programme = services.create_programme(session, actor=actor, user=bureau, values={
            "name": "基准创新券（预约）", "year": today.year, "pool_fen": HOLDERS * 1_000_000_00, "coverage_bp": 5_000,
            "sme_coverage_bp": 7_000, "enterprise_year_cap_fen": 1_000_000_00, "order_cap_fen": 20_000_00,
            "validity_days": 365, "applications_open_on": today - timedelta(days=30),
            "applications_close_on": today + timedelta(days=30), "redemption_mode": "provider",
            "eligible_category_codes": [], "eligible_platform_ids": []})
        holders = []
        for email in dataset.bookings.members[:HOLDERS]:
            user = session.scalar(sa.select(User).where(User.email == email))
            application = services.apply_for_voucher(
                session, actor=actor, user=user, programme_id=programme.id,
                enterprise_id=min(user.organisation_ids(Role.ENTERPRISE_MEMBER)), requested_fen=1_000_000_00,
                purpose="基准测试", planned_instruments="", now=now - timedelta(days=2))
            voucher = services.approve_application(session, application, actor=actor, user=bureau,
                                                   amount_fen=1_000_000_00, now=now - timedelta(days=1))
            holders.append((user.id, voucher.id))
    return holders


def _free_slots(dataset: Dataset) -> Iterator[tuple[int, datetime, datetime]]:
    """(instrument id, start, end) never given twice: two-hour slots from the second open day on, of
    BOOKABLE priced, openly shared generated instruments with nothing booked after now."""
    from core.db import UTCDateTime, utcnow
    from core.extensions import db

    now = utcnow()
    ids = list(db.session.scalars(sa.text(
        "SELECT i.id FROM instruments i WHERE i.state = 'published' AND i.sharing_mode = 'open' "
        "AND i.asset_number LIKE 'BL-%' AND i.hourly_rate_district_enterprise_fen > 0 AND NOT EXISTS "
        "(SELECT 1 FROM bookings b WHERE b.instrument_id = i.id AND b.end_at > :now) ORDER BY i.id LIMIT :limit"
    ).bindparams(sa.bindparam("now", type_=UTCDateTime())), {"now": now, "limit": BOOKABLE}))
    db.session.remove()
    _expect(len(ids) == BOOKABLE, f"only {len(ids)} priced instruments have nothing booked ahead")
    today = to_local(now).date()
    for day in open_days(today + timedelta(days=2), today + timedelta(days=80)):
        for hour in HOLD_HOURS:
            start = local_midnight(day) + timedelta(hours=int(hour[:2]), minutes=int(hour[3:]))
            for instrument_id in ids:
                yield instrument_id, start, start + timedelta(hours=2)


def _timed_booking(user_id: int, slot: tuple[int, datetime, datetime], voucher_id: int | None) -> float:
    """book_instrument and the commit, timed; the member loaded before (as the request's login has it)."""
    from core.audit import Actor
    from core.db import unit_of_work, utcnow
    from core.extensions import db
    from core.models import User
    from marketplace.booking.services import book_instrument

    instrument_id, start, end = slot
    user = db.session.get(User, user_id)
    started = time.perf_counter()
    with unit_of_work() as session:
        booking = book_instrument(session, actor=Actor.of(user, None), user=user, instrument_id=instrument_id,
                                  start_at=start, end_at=end, now=utcnow(), purpose="基准预约",
                                  voucher_id=voucher_id)
        voucher_fen = booking.voucher_fen
    elapsed = time.perf_counter() - started
    db.session.remove()
    _expect((voucher_fen > 0) == (voucher_id is not None), f"booking with voucher {voucher_id}: part {voucher_fen}")
    return elapsed


# --- bulk rows that agree with the ledger ------------------------------------------------------------

def _write(connection: sa.Connection, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Rows of plain values (aware datetimes) into a table, in the connection's transaction: COPY on
    PostgreSQL, executemany on SQLite (instants as SQLAlchemy stores them there: naive UTC text)."""
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        with driver.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    text = [tuple(v.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v
                  for v in row) for row in rows]
    driver.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                       text)


def _analyze(connection: sa.Connection, *tables: str) -> None:
    """Statistics for the planners after a bulk load (on SQLite inside a transaction that commits)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"ANALYZE {', '.join(tables)}")
    else:
        for table in tables:
            connection.exec_driver_sql(f"ANALYZE {table}")


def _programme(connection: sa.Connection, *, name: str, year: int, issued_fen: int, bureau_id: int,
               created_at: datetime, validity_days: int = 365) -> int:
    """A provider-redeemed programme whose pool is what it issued (50 %, 70 % for tech SMEs)."""
    from vouchers.models import Programme

    (programme_id,) = _insert_returning_ids(connection, Programme.__table__, [{
        "name": name, "year": year, "pool_fen": issued_fen, "issued_fen": issued_fen, "coverage_bp": 5_000,
        "sme_coverage_bp": 7_000, "enterprise_year_cap_fen": 10_000_000_00, "order_cap_fen": 10_000_000_00,
        "validity_days": validity_days, "applications_open_on": date(year, 1, 1),
        "applications_close_on": date(year, 12, 31), "redemption_mode": "provider", "eligible_category_codes": [],
        "eligible_platform_ids": [], "created_by_id": bureau_id, "created_at": created_at}])
    return programme_id


def _vouchers(connection: sa.Connection, programme_id: int, year: int, issued: list[dict], *,
              bureau_id: int) -> list[int]:
    """Approved applications and their vouchers; `issued`: dicts of enterprise_id, applicant_id, amount_fen,
    issued_at, expires_at and the columns balance/held/consumed/redeemed_fen (and state, if not active)."""
    from vouchers.models import Application, Voucher

    application_ids = _insert_returning_ids(connection, Application.__table__, [{
        "programme_id": programme_id, "enterprise_id": each["enterprise_id"], "applicant_id": each["applicant_id"],
        "requested_fen": each["amount_fen"], "purpose": "基准数据集", "planned_instruments": "", "state": "approved",
        "approved_fen": each["amount_fen"], "decided_by_id": bureau_id, "decided_at": each["issued_at"],
        "created_at": each["issued_at"] - timedelta(days=10)} for each in issued])
    return _insert_returning_ids(connection, Voucher.__table__, [{
        "serial": f"KQ{year}-{application_id:06d}", "programme_id": programme_id,
        "enterprise_id": each["enterprise_id"], "application_id": application_id, "amount_fen": each["amount_fen"],
        "balance_fen": each["balance_fen"], "held_fen": each["held_fen"], "consumed_fen": each["consumed_fen"],
        "redeemed_fen": each["redeemed_fen"], "state": each.get("state", "active"), "issued_at": each["issued_at"],
        "expires_at": each["expires_at"]} for application_id, each in zip(application_ids, issued, strict=True)])


def _bureau_id(connection: sa.Connection) -> int:
    return connection.scalar(sa.text("SELECT id FROM users WHERE email = :email"), {"email": BUREAU})


# --- a claim gathering 10,000 voucher uses ---------------------------------------------------------

CLAIM_USES = 10_000


def claim_of_uses(dataset: Dataset) -> list[Timing]:
    """Untimed: the 10,000 latest completed bookings of the platform with the most turned into bookings
    paid partly by a voucher of their enterprise (a programme, a voucher per enterprise with some balance
    left, issue, hold and consume entries; the booking's voucher part, and its payment less that part).
    Timed: create_provider_claim by the platform's admin over the whole period, and the commit."""
    return _in_app(dataset, _measure_claim)


def _measure_claim() -> list[Timing]:
    from core.audit import Actor
    from core.db import unit_of_work, utcnow
    from core.extensions import db
    from core.models import User
    from vouchers.claims.services import create_provider_claim

    platform_id, admin_id, first_day, vouchers = _voucher_uses()
    session = db.session
    admin = session.get(User, admin_id)
    now = utcnow()
    started = time.perf_counter()
    with unit_of_work() as session:
        claim = create_provider_claim(session, actor=Actor.of(admin, None), user=admin, platform_id=platform_id,
                                      period_start=first_day, period_end=to_local(now).date(),
                                      declaration_accepted=True, now=now, bank_account_name="基准平台",
                                      bank_name="中国工商银行绍兴柯桥支行", bank_account_number="1211014009200000001")
        claim_id, total = claim.id, claim.total_fen
    elapsed = time.perf_counter() - started
    lines = db.session.scalar(sa.text("SELECT count(*) FROM voucher_claim_lines WHERE claim_id = :id"), {"id": claim_id})
    db.session.remove()
    _expect(lines == CLAIM_USES, f"the claim gathered {lines} uses, not {CLAIM_USES}")
    return [Timing(f"{lines:,} uses of {vouchers:,} vouchers, ¥{total // 100:,}: gathered, filed, committed",
                   elapsed)]


def _voucher_uses() -> tuple[int, int, date, int]:
    """Write the voucher uses; returns the platform, its admin, the first day served and the vouchers."""
    from core.extensions import db

    with db.engine.begin() as connection:
        platform_id, count = connection.execute(sa.text(
            "SELECT i.platform_id, count(*) FROM bookings b JOIN instruments i ON i.id = b.instrument_id "
            "WHERE b.state = 'completed' AND b.price_fen > 1 AND b.voucher_id IS NULL AND b.enterprise_id IS NOT NULL "
            "GROUP BY i.platform_id ORDER BY count(*) DESC, i.platform_id LIMIT 1")).one()
        _expect(count >= CLAIM_USES, f"no platform has {CLAIM_USES} completed bookings (at most {count})")
        used = connection.execute(sa.text(
            "SELECT b.id, b.enterprise_id, b.booker_id, b.operator_id, b.price_fen, b.created_at, b.checked_out_at, "
            "e.is_tech_sme, i.name_zh, i.name_en, i.asset_number, c.code, b.start_at, b.end_at, b.checked_in_at, "
            "b.final_price_fen, b.payment_state IN ('paid', 'refunded') AS is_paid "
            "FROM bookings b JOIN instruments i ON i.id = b.instrument_id "
            "JOIN instrument_categories c ON c.id = i.category_id "
            "JOIN enterprises e ON e.id = b.enterprise_id WHERE i.platform_id = :platform AND b.state = 'completed' "
            "AND b.price_fen > 1 AND b.voucher_id IS NULL ORDER BY b.end_at DESC, b.id LIMIT :count"),
            {"platform": platform_id, "count": CLAIM_USES}).all()
        admin_id = connection.scalar(sa.text(
            "SELECT min(user_id) FROM role_grants WHERE role = 'platform_admin' AND organisation_id = :platform"),
            {"platform": platform_id})
        by_enterprise: dict[int, list] = defaultdict(list)
        for row in used:
            by_enterprise[row.enterprise_id].append(row)
        first_hold = min(_aware(row.created_at) for row in used)
        issued_at = first_hold - timedelta(days=1)
        year = to_local(issued_at).year
        validity = (datetime.now(timezone.utc) - issued_at).days + 365
        issued, parts, ratios = [], {}, {}
        for enterprise_id, rows in by_enterprise.items():
            for row in rows:
                ratios[row.id] = 7_000 if row.is_tech_sme else 5_000
                parts[row.id] = row.price_fen * ratios[row.id] // 10_000
            consumed = sum(parts[row.id] for row in rows)
            issued.append({"enterprise_id": enterprise_id, "applicant_id": rows[0].booker_id,
                           "amount_fen": consumed + 10_000_00, "balance_fen": 10_000_00, "held_fen": 0,
                           "consumed_fen": consumed, "redeemed_fen": 0, "issued_at": issued_at,
                           "expires_at": issued_at + timedelta(days=validity)})
        bureau_id = _bureau_id(connection)
        programme_id = _programme(connection, name="基准创新券（兑付）", year=year, bureau_id=bureau_id,
                                  issued_fen=sum(each["amount_fen"] for each in issued),
                                  created_at=issued_at - timedelta(days=30), validity_days=validity)
        voucher_ids = dict(zip(by_enterprise, _vouchers(connection, programme_id, year, issued, bureau_id=bureau_id),
                               strict=True))
        entries = [(voucher_ids[each["enterprise_id"]], "issue", each["amount_fen"], None, None, None, bureau_id,
                    BUREAU, issued_at) for each in issued]
        for row in used:
            voucher_id, part = voucher_ids[row.enterprise_id], parts[row.id]
            entries.append((voucher_id, "hold", part, row.id, None, platform_id, row.booker_id, "bench",
                            _aware(row.created_at)))
            entries.append((voucher_id, "consume", part, row.id, None, platform_id, row.operator_id, "bench",
                            _aware(row.checked_out_at)))
        _write(connection, "voucher_ledger_entries", ENTRY_COLUMNS, entries)
        _write(connection, "voucher_uses", USE_COLUMNS, [  # what the marketplace told of each at hold and completion
            (row.id, voucher_ids[row.enterprise_id], platform_id, row.name_zh, row.name_en, row.asset_number, row.code,
             _aware(row.start_at), _aware(row.end_at), row.price_fen, ratios[row.id], _aware(row.checked_in_at),
             _aware(row.checked_out_at), _aware(row.checked_out_at), row.final_price_fen, bool(row.is_paid))
            for row in used])
        changes = [{"b_id": row.id, "b_voucher": voucher_ids[row.enterprise_id], "b_part": parts[row.id]}
                   for row in used]
        connection.execute(sa.text(
            "UPDATE bookings SET voucher_id = :b_voucher, voucher_fen = :b_part, payable_fen = price_fen - :b_part, "
            "final_voucher_fen = :b_part WHERE id = :b_id"), changes)
        connection.execute(sa.text(
            "UPDATE payments SET amount_fen = amount_fen - :b_part, captured_fen = captured_fen - :b_part "
            "WHERE booking_id = :b_id AND purpose = 'share'"), changes)
        _analyze(connection, "voucher_ledger_entries", "voucher_uses", "vouchers", "voucher_applications")
    first_day = to_local(min(_aware(row.checked_out_at) for row in used)).date()
    return platform_id, admin_id, first_day, len(issued)


def _aware(value: datetime | str) -> datetime:
    """An instant read with plain SQL: aware on PostgreSQL, naive UTC (text on SQLite) otherwise."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


# --- the nightly ledger check over 1,000,000 entries --------------------------------------------------

LEDGER_ENTRIES = 1_000_000  # in the table, with those the other figures and the demo wrote
LEDGER_VOUCHERS = 10_000  # the generated vouchers, over LEDGER_YEARS yearly programmes
LEDGER_YEARS = 5


def ledger_check(dataset: Dataset) -> list[Timing]:
    """Untimed: the ledger topped up to 1,000,000 entries with the histories of 10,000 vouchers (five
    yearly programmes; holds consumed or released, redemptions, some vouchers expired), and one
    voucher's balance then lowered by a fen. Timed: mismatched_vouchers, which must find that one."""
    return _in_app(dataset, _measure_ledger_check)


def _measure_ledger_check() -> list[Timing]:
    from core.extensions import db
    from vouchers.ledger import mismatched_vouchers

    entries, vouchers, tampered = _ledger_histories()
    started = time.perf_counter()
    found = mismatched_vouchers(db.session)
    elapsed = time.perf_counter() - started
    db.session.rollback()
    with db.engine.begin() as connection:  # the voucher as its ledger has it again
        connection.execute(sa.text("UPDATE vouchers SET balance_fen = balance_fen + 1 WHERE id = :id"),
                           {"id": tampered})
    _expect(found == [tampered], f"the check found {found[:5]}, not the tampered voucher {tampered}")
    return [Timing(f"{entries:,} entries of {vouchers:,} vouchers: the one tampered with found", elapsed)]


def _ledger_histories() -> tuple[int, int, int]:
    """Write the vouchers and their entries; returns the entries in the ledger, the vouchers and the id
    of the voucher tampered with."""
    from core.extensions import db

    rng = random.Random(SEED)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with db.engine.begin() as connection:
        existing = connection.scalar(sa.text("SELECT count(*) FROM voucher_ledger_entries"))
        holders = connection.execute(sa.text(
            "SELECT g.organisation_id, min(g.user_id) FROM role_grants g JOIN users u ON u.id = g.user_id "
            "WHERE g.role = 'enterprise_member' AND u.email LIKE '%@enterprise.bench.test' "
            "GROUP BY g.organisation_id ORDER BY g.organisation_id")).all()
        bureau_id = _bureau_id(connection)
        written, target, tampered = 0, LEDGER_ENTRIES - existing, None
        for number in range(LEDGER_YEARS):  # a programme a year, the last one this year's
            opened = now - timedelta(days=365 * (LEDGER_YEARS - number))
            year = (opened + timedelta(days=150)).year
            count = LEDGER_VOUCHERS // LEDGER_YEARS
            histories = []
            for index in range(count):
                remaining_vouchers = LEDGER_VOUCHERS - number * count - index
                entries = round((target - written) / remaining_vouchers)
                enterprise_id, applicant_id = holders[(number * count + index) % len(holders)]
                issued_at = opened + timedelta(days=rng.randrange(300))
                histories.append(_history(rng, enterprise_id, applicant_id, max(entries, 1), issued_at, now))
                written += len(histories[-1][1])
            issued = [voucher for voucher, _entries in histories]
            programme_id = _programme(connection, name=f"基准创新券（台账）{year}", year=year, bureau_id=bureau_id,
                                      issued_fen=sum(v["amount_fen"] for v in issued),
                                      created_at=opened - timedelta(days=30))
            ids = _vouchers(connection, programme_id, year, issued, bureau_id=bureau_id)
            _write(connection, "voucher_ledger_entries", ENTRY_COLUMNS,
                   [(voucher_id, *entry) for voucher_id, (_voucher, entries) in zip(ids, histories, strict=True)
                    for entry in entries])
            if tampered is None:
                tampered = next((i for i, v in zip(ids, issued, strict=True) if v["balance_fen"] > 0), None)
        _expect(tampered is not None, "no generated voucher has a balance to tamper with")
        connection.execute(sa.text("UPDATE vouchers SET balance_fen = balance_fen - 1 WHERE id = :id"),
                           {"id": tampered})
        _analyze(connection, "voucher_ledger_entries", "vouchers", "voucher_applications")
        total = connection.scalar(sa.text("SELECT count(*) FROM voucher_ledger_entries"))
        vouchers = connection.scalar(sa.text("SELECT count(*) FROM vouchers"))
    return total, vouchers, tampered


def _history(rng: random.Random, enterprise_id: int, applicant_id: int, entries: int, issued_at: datetime,
             now: datetime) -> tuple[dict, list[tuple]]:
    """A voucher (its columns) and about `entries` ledger entries (without the voucher id) that add up to
    them: issued, then bookings held and consumed (the rest released) or released whole, redemptions of
    what was consumed; a voucher past its validity has its balance expired at the end."""
    amount = rng.randrange(10_000, 200_000) * 100
    balance, held, consumed, redeemed = amount, 0, 0, 0
    at, expires_at = issued_at, issued_at + timedelta(days=365)
    expires = expires_at <= now
    step = max((min(now, expires_at) - issued_at) / (entries + 1), timedelta(seconds=1))
    rows = [("issue", amount, None, None, None, applicant_id, "bench", at)]

    def add(kind: str, fen: int) -> None:
        nonlocal at
        at += step
        rows.append((kind, fen, None, None, None, applicant_id, "bench", at))

    while len(rows) < entries - (1 if expires else 0):
        room = entries - len(rows) - (1 if expires else 0)
        if consumed > redeemed and room >= 1 and rng.random() < 0.15:
            fen = consumed - redeemed
            add("redeem", fen)
            redeemed += fen
        elif balance >= 2 and room >= 2:
            fen = rng.randrange(1, max(1, min(balance // 2, amount // 100)) + 1)
            add("hold", fen)
            balance, held = balance - fen, held + fen
            if rng.random() < 0.8 and room >= 3:
                used = rng.randrange(1, fen + 1)
                add("consume", used)
                held, consumed = held - used, consumed + used
                if used < fen:
                    add("release", fen - used)
                    held, balance = held - (fen - used), balance + (fen - used)
            else:
                add("release", fen)
                held, balance = held - fen, balance + fen
        else:
            break
    voucher = {"enterprise_id": enterprise_id, "applicant_id": applicant_id, "amount_fen": amount,
               "issued_at": issued_at, "expires_at": expires_at}
    if expires:
        if balance:
            rows.append(("expire", balance, None, None, None, None, "job:expire_vouchers", expires_at))
        balance, voucher["state"] = 0, "expired"
    voucher |= {"balance_fen": balance, "held_fen": held, "consumed_fen": consumed, "redeemed_fen": redeemed}
    return voucher, rows


ONE_OFFS: list[OneOff] = [
    OneOff("a voucher part held at booking: p95 added", 0.005, voucher_hold,
           "marketplace.booking.services.book_instrument in-process, committed, by members of verified enterprises on "
           f"two-hour slots of {BOOKABLE} priced instruments with nothing booked ahead: {HOLD_PAIRS} bookings with "
           f"the member's voucher (quoted, refused or held: its programme locked, its caps summed, a hold entry) "
           f"and {HOLD_PAIRS} without, in interleaved pairs after {HOLD_WARMUPS} warm-up pairs; the figure is the "
           "p95 with a voucher less the p95 without"),
    OneOff(f"a claim gathering {CLAIM_USES:,} voucher uses", 2, claim_of_uses,
           "vouchers.claims.services.create_provider_claim in-process by the admin of the platform with the most completed "
           f"bookings, over its {CLAIM_USES:,} latest ones, made into voucher uses beforehand (bulk SQL: a voucher per "
           "enterprise, issue, hold and consume entries, the bookings' voucher parts, the payments less them): "
           "the unclaimed uses gathered, a line each written, the audit entry, the commit"),
    OneOff(f"ledger check over {LEDGER_ENTRIES:,} entries", 10, ledger_check,
           "vouchers.ledger.mismatched_vouchers (the nightly check_voucher_ledger job's query) in-process, after "
           f"the ledger was topped up to {LEDGER_ENTRIES:,} entries with the histories of {LEDGER_VOUCHERS:,} "
           "generated vouchers (bulk SQL, each voucher's columns the sums of its entries) and one voucher's balance "
           "lowered by a fen, which the check must find; the target is PostgreSQL's"),
]
