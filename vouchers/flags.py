"""Anti-abuse flags for the bureau: patterns that deserve a look, never a verdict. The bureau
follows a flag to the voucher (to void it) or the programme (to suspend the platform).

- many voucher bookings between one enterprise and one platform in a short window;
- voucher bookings completed with no usage recorded (or far less than booked);
- the same consumption amount repeated between one enterprise and one platform;
- claim lines filed long after the service.

What the flags know of a booking is its voucher use (vouchers/models.py: VoucherUse), as the marketplace
handed it over. Usage comes from the check-in and check-out recorded there until monitoring records
instrument sessions: monitoring sits above vouchers, so it registers its own source with
register_usage_source(app, source) and flags_for_bureau uses it (usage_source(app))."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from core.clock import to_local
from core.models import Enterprise, Platform
from vouchers.models import Claim, ClaimLine, EntryKind, LedgerEntry, Voucher, VoucherUse

FREQUENT_BOOKINGS = 5  # voucher bookings between one enterprise and one platform …
FREQUENT_WINDOW = timedelta(days=30)  # … within this many days
MIN_USAGE_SHARE_BP = 1_000  # usage recorded under 10 % of the booked time
REPEATED_AMOUNTS = 3  # the same consumption amount this many times between one enterprise and one platform
LATE_CLAIM = timedelta(days=90)  # a claim line filed this long after the service
LOOKBACK = timedelta(days=366)  # flags look at the last year

# (session, booking ids) → {booking id: seconds of usage recorded}; a booking with none recorded is absent.
UsageSource = Callable[[Session, list[int]], dict[int, int]]
USAGE_EXTENSION = "kequip.voucher_usage_source"


def checkin_usage(session: Session, booking_ids: list[int]) -> dict[int, int]:
    """Usage as the operator recorded it: check-out less check-in."""
    rows = session.execute(select(VoucherUse.booking_id, VoucherUse.checked_in_at, VoucherUse.checked_out_at).where(
        VoucherUse.booking_id.in_(booking_ids), VoucherUse.checked_in_at.is_not(None),
        VoucherUse.checked_out_at.is_not(None))) if booking_ids else []
    return {booking_id: max(int((out - in_).total_seconds()), 0) for booking_id, in_, out in rows}


def register_usage_source(app: Flask, source: UsageSource) -> None:
    """For monitoring: usage from the instruments' own sessions instead of check-in and check-out."""
    app.extensions[USAGE_EXTENSION] = source


def usage_source(app: Flask) -> UsageSource:
    return app.extensions.get(USAGE_EXTENSION, checkin_usage)


@dataclass(frozen=True, slots=True)
class PairFlag:
    """Many voucher bookings between one enterprise and one platform within the window."""

    enterprise_id: int
    enterprise_name: str
    platform_id: int
    platform_name: str
    count: int  # the most bookings found in one window
    first_at: datetime
    last_at: datetime
    booking_ids: list[int]
    voucher_ids: list[int]


@dataclass(frozen=True, slots=True)
class UsageFlag:
    booking_id: int
    voucher_id: int
    enterprise_name: str
    platform_name: str
    instrument_name: str
    start_at: datetime
    booked_seconds: int
    used_seconds: int | None  # None: no usage recorded at all


@dataclass(frozen=True, slots=True)
class AmountFlag:
    enterprise_id: int
    enterprise_name: str
    platform_id: int
    platform_name: str
    amount_fen: int
    count: int
    voucher_ids: list[int]


@dataclass(frozen=True, slots=True)
class LateClaimFlag:
    claim_id: int
    line_id: int
    booking_id: int
    voucher_id: int
    served_on: date
    filed_on: date
    days: int


@dataclass
class Flags:
    frequent_pairs: list[PairFlag] = field(default_factory=list)
    unused_completions: list[UsageFlag] = field(default_factory=list)
    repeated_amounts: list[AmountFlag] = field(default_factory=list)
    late_claims: list[LateClaimFlag] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.frequent_pairs) + len(self.unused_completions) + len(self.repeated_amounts) \
            + len(self.late_claims)


def _names(session: Session, model: type[Enterprise] | type[Platform], ids: Iterable[int]) -> dict[int, str]:
    wanted = set(ids)
    return dict(session.execute(select(model.id, model.name).where(model.id.in_(wanted))).all()) \
        if wanted else {}


def frequent_pairs(session: Session, *, now: datetime, threshold: int = FREQUENT_BOOKINGS,
                   window: timedelta = FREQUENT_WINDOW) -> list[PairFlag]:
    """Pairs with at least `threshold` voucher bookings (their holds) within any `window`, in the last year."""
    rows = session.execute(
        select(Voucher.enterprise_id, LedgerEntry.platform_id, LedgerEntry.at, LedgerEntry.booking_id,
               LedgerEntry.voucher_id)
        .join(Voucher, Voucher.id == LedgerEntry.voucher_id)
        .where(LedgerEntry.kind == EntryKind.HOLD, LedgerEntry.platform_id.is_not(None),
               LedgerEntry.at >= now - LOOKBACK)
        .order_by(Voucher.enterprise_id, LedgerEntry.platform_id, LedgerEntry.at, LedgerEntry.id))
    by_pair: dict[tuple[int, int], list] = defaultdict(list)
    for enterprise_id, platform_id, at, booking_id, voucher_id in rows:
        by_pair[(enterprise_id, platform_id)].append((at, booking_id, voucher_id))
    found = []
    for (enterprise_id, platform_id), holds in by_pair.items():
        best: tuple[int, int] | None = None  # (start, end) indexes of the fullest window
        start = 0
        for end in range(len(holds)):
            while holds[end][0] - holds[start][0] > window:
                start += 1
            if end - start + 1 >= threshold and (best is None or end - start > best[1] - best[0]):
                best = (start, end)
        if best is not None:
            chosen = holds[best[0]:best[1] + 1]
            found.append((enterprise_id, platform_id, chosen))
    enterprises = _names(session, Enterprise, (f[0] for f in found))
    platforms = _names(session, Platform, (f[1] for f in found))
    return sorted((PairFlag(enterprise_id, enterprises.get(enterprise_id, ""), platform_id,
                            platforms.get(platform_id, ""), len(chosen), chosen[0][0], chosen[-1][0],
                            [c[1] for c in chosen if c[1] is not None], sorted({c[2] for c in chosen}))
                   for enterprise_id, platform_id, chosen in found), key=lambda f: (-f.count, f.enterprise_name))


def unused_completions(session: Session, *, now: datetime, usage: UsageSource = checkin_usage,
                       min_share_bp: int = MIN_USAGE_SHARE_BP) -> list[UsageFlag]:
    """Completed voucher bookings of the last year with no usage recorded, or less than min_share_bp of
    the booked time."""
    use = VoucherUse
    enterprise, platform = aliased(Enterprise, flat=True), aliased(Platform, flat=True)
    rows = session.execute(
        select(use.booking_id, use.voucher_id, use.start_at, use.end_at, enterprise.name, platform.name,
               use.instrument_name_zh)
        .join(platform, platform.id == use.platform_id)
        .join(Voucher, Voucher.id == use.voucher_id)
        .outerjoin(enterprise, enterprise.id == Voucher.enterprise_id)
        .where(use.completed_at.is_not(None), use.start_at >= now - LOOKBACK)
        .order_by(use.start_at.desc())).all()
    used = usage(session, [row[0] for row in rows])
    found = []
    for booking_id, voucher_id, start_at, end_at, enterprise_name, platform_name, instrument_name in rows:
        booked = int((end_at - start_at).total_seconds())
        seconds = used.get(booking_id)
        if seconds is None or seconds * 10_000 < booked * min_share_bp:
            found.append(UsageFlag(booking_id, voucher_id, enterprise_name or "", platform_name, instrument_name,
                                   start_at, booked, seconds))
    return found


def repeated_amounts(session: Session, *, now: datetime, threshold: int = REPEATED_AMOUNTS) -> list[AmountFlag]:
    """The same consumption amount at least `threshold` times between one enterprise and one platform."""
    groups = session.execute(
        select(Voucher.enterprise_id, LedgerEntry.platform_id, LedgerEntry.amount_fen, func.count())
        .join(Voucher, Voucher.id == LedgerEntry.voucher_id)
        .where(LedgerEntry.kind == EntryKind.CONSUME, LedgerEntry.platform_id.is_not(None),
               LedgerEntry.at >= now - LOOKBACK)
        .group_by(Voucher.enterprise_id, LedgerEntry.platform_id, LedgerEntry.amount_fen)
        .having(func.count() >= threshold)
        .order_by(func.count().desc(), LedgerEntry.amount_fen.desc())).all()
    enterprises = _names(session, Enterprise, (g[0] for g in groups))
    platforms = _names(session, Platform, (g[1] for g in groups))
    found = []
    for enterprise_id, platform_id, amount, count in groups:
        voucher_ids = sorted(session.scalars(
            select(LedgerEntry.voucher_id).distinct().join(Voucher, Voucher.id == LedgerEntry.voucher_id).where(
                LedgerEntry.kind == EntryKind.CONSUME, LedgerEntry.platform_id == platform_id,
                LedgerEntry.amount_fen == amount, Voucher.enterprise_id == enterprise_id)))
        found.append(AmountFlag(enterprise_id, enterprises.get(enterprise_id, ""), platform_id,
                                platforms.get(platform_id, ""), int(amount), int(count), voucher_ids))
    return found


def late_claims(session: Session, *, now: datetime, claim_id: int | None = None,
                late: timedelta = LATE_CLAIM) -> list[LateClaimFlag]:
    """Claim lines whose service was more than `late` before the claim was filed (of the last year's
    claims, or of one claim)."""
    stmt = (select(ClaimLine.claim_id, ClaimLine.id, ClaimLine.booking_id, ClaimLine.voucher_id,
                   ClaimLine.served_on, Claim.created_at)
            .join(Claim, Claim.id == ClaimLine.claim_id)
            .order_by(Claim.id.desc(), ClaimLine.id))
    stmt = stmt.where(Claim.id == claim_id) if claim_id is not None else stmt.where(Claim.created_at >= now - LOOKBACK)
    found = []
    for claim, line, booking_id, voucher_id, served_on, created_at in session.execute(stmt):
        filed_on = to_local(created_at).date()
        if filed_on - served_on > late:
            found.append(LateClaimFlag(claim, line, booking_id, voucher_id, served_on, filed_on,
                                       (filed_on - served_on).days))
    return found


def flags_for_bureau(session: Session, *, now: datetime, usage: UsageSource = checkin_usage) -> Flags:
    return Flags(frequent_pairs=frequent_pairs(session, now=now),
                 unused_completions=unused_completions(session, now=now, usage=usage),
                 repeated_amounts=repeated_amounts(session, now=now),
                 late_claims=late_claims(session, now=now))
