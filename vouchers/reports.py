"""A programme's figures for its page: pool, issued, held, consumed, redeemed and remaining, by platform,
by instrument category and by industry, and the charts of them (SVG drawn on the server by pygal, with
no script and nothing fetched from elsewhere).

Where the money went is read from the ledger. An entry of a booking (hold, release, consume, and a
redemption paid for that booking) belongs to the platform that served it and to the category of the
booked instrument, both kept on the booking's voucher use (handed over by the marketplace at the hold);
a category is named from the marketplace's code list lent to vouchers (listing.category_choices). A
redemption recorded for a claim without a booking belongs to the claim's platform and to no category.

Industries: an enterprise records no industry, so issuance is not broken down by industry. What the
vouchers paid or hold for is counted under the industries of the SERVING platform (each platform
serves one or more of the district's industries); a platform of two industries counts in both,
so the industry rows may add up to more than the total."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pygal
import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.charts import chart_options
from core.models import INDUSTRY_LABELS, Industry, Platform, PlatformIndustry
from core.money import format_yuan
from vouchers import listing
from vouchers.models import Claim, EntryKind, LedgerEntry, Programme, Voucher, VoucherUse

TOP_PLATFORMS_IN_CHART = 12


@dataclass(slots=True)
class Spent:
    """What vouchers hold for, consumed and had redeemed, in fen, for one platform, category or industry."""

    held_fen: int = 0
    consumed_fen: int = 0
    redeemed_fen: int = 0

    def add(self, other: Spent) -> None:
        self.held_fen += other.held_fen
        self.consumed_fen += other.consumed_fen
        self.redeemed_fen += other.redeemed_fen

    @property
    def is_empty(self) -> bool:
        return not (self.held_fen or self.consumed_fen or self.redeemed_fen)


@dataclass(frozen=True, slots=True)
class Row:
    key: str | int | None  # platform id, top-level category code, industry value; None: not attributed
    label: str
    spent: Spent


@dataclass(slots=True)
class ProgrammeFigures:
    pool_fen: int
    issued_fen: int  # what the pool has given (the sum of issue entries)
    balance_fen: int  # still to spend in active vouchers
    held_fen: int  # set aside for bookings not yet completed
    consumed_fen: int  # spent on completed bookings, redeemed or not
    redeemed_fen: int  # paid out by claims
    lapsed_fen: int  # expired or voided balance
    voucher_count: int
    by_platform: list[Row] = field(default_factory=list)
    by_category: list[Row] = field(default_factory=list)
    by_industry: list[Row] = field(default_factory=list)

    @property
    def remaining_fen(self) -> int:
        """What the pool has not issued yet."""
        return self.pool_fen - self.issued_fen


def _signed_sums() -> list[sa.ColumnElement]:
    amount = LedgerEntry.amount_fen
    held = sa.case((LedgerEntry.kind == EntryKind.HOLD.value, amount),
                   (LedgerEntry.kind.in_((EntryKind.RELEASE.value, EntryKind.CONSUME.value)), -amount), else_=0)
    consumed = sa.case((LedgerEntry.kind == EntryKind.CONSUME.value, amount), else_=0)
    redeemed = sa.case((LedgerEntry.kind == EntryKind.REDEEM.value, amount), else_=0)
    return [func.coalesce(func.sum(column), 0) for column in (held, consumed, redeemed)]


def programme_figures(session: Session, programme: Programme, *, language: str) -> ProgrammeFigures:
    totals = session.execute(select(
        func.count(Voucher.id), *(func.coalesce(func.sum(c), 0) for c in (
            Voucher.amount_fen, Voucher.balance_fen, Voucher.held_fen, Voucher.consumed_fen, Voucher.redeemed_fen)))
        .where(Voucher.programme_id == programme.id)).one()
    count, amount, balance, held, consumed, redeemed = (int(v) for v in totals)
    figures = ProgrammeFigures(pool_fen=programme.pool_fen, issued_fen=programme.issued_fen, balance_fen=balance,
                               held_fen=held, consumed_fen=consumed, redeemed_fen=redeemed,
                               lapsed_fen=amount - balance - held - consumed, voucher_count=count)
    _break_down(session, programme, figures, language=language)
    return figures


def _break_down(session: Session, programme: Programme, figures: ProgrammeFigures, *, language: str) -> None:
    platform_id = func.coalesce(VoucherUse.platform_id, Claim.platform_id, LedgerEntry.platform_id)
    top_code = func.substr(VoucherUse.category_code, 1, 2)
    rows = session.execute(
        select(platform_id, top_code, *_signed_sums())
        .select_from(LedgerEntry)
        .join(Voucher, Voucher.id == LedgerEntry.voucher_id)
        .outerjoin(VoucherUse, VoucherUse.booking_id == LedgerEntry.booking_id)
        .outerjoin(Claim, Claim.id == LedgerEntry.claim_id)
        .where(Voucher.programme_id == programme.id,
               LedgerEntry.kind.in_((EntryKind.HOLD, EntryKind.RELEASE, EntryKind.CONSUME, EntryKind.REDEEM)))
        .group_by(platform_id, top_code)).all()
    by_platform: dict[int | None, Spent] = defaultdict(Spent)
    by_category: dict[str | None, Spent] = defaultdict(Spent)
    for pid, code, held, consumed, redeemed in rows:
        spent = Spent(int(held), int(consumed), int(redeemed))
        by_platform[pid].add(spent)
        by_category[code].add(spent)
    unattributed = _("Not attributed")

    platform_ids = [pid for pid in by_platform if pid is not None]
    names = dict(session.execute(select(Platform.id, Platform.name).where(Platform.id.in_(platform_ids))).all()) \
        if platform_ids else {}
    figures.by_platform = sorted(
        (Row(pid, names.get(pid, unattributed) if pid is not None else unattributed, spent)
         for pid, spent in by_platform.items() if not spent.is_empty),
        key=lambda row: (-row.spent.consumed_fen, -row.spent.held_fen, row.label))

    category_names = dict(listing.category_choices(session, language)) if any(by_category) else {}
    figures.by_category = [
        Row(code, f"{code} {category_names.get(code, '')}".strip() if code is not None else unattributed, spent)
        for code, spent in sorted(by_category.items(), key=lambda item: (item[0] is None, item[0] or ""))
        if not spent.is_empty]

    by_industry: dict[Industry, Spent] = defaultdict(Spent)
    if platform_ids:
        for pid, industry in session.execute(select(PlatformIndustry.platform_id, PlatformIndustry.industry)
                                             .where(PlatformIndustry.platform_id.in_(platform_ids))):
            by_industry[Industry(industry)].add(by_platform[pid])
    figures.by_industry = [Row(industry.value, str(INDUSTRY_LABELS[industry]), by_industry[industry])
                           for industry in Industry if industry in by_industry and not by_industry[industry].is_empty]


# --- charts -----------------------------------------------------------------------------------------

def _chart_options(title: str, *, height: int) -> dict:
    return chart_options(title, height=height, value_formatter=lambda fen: format_yuan(int(fen or 0)))


def pool_chart(figures: ProgrammeFigures, *, title: str) -> str:
    """The pool in one bar: what was redeemed, consumed, held, is still to spend, lapsed, and not issued."""
    chart = pygal.HorizontalStackedBar(**_chart_options(title, height=260), show_y_labels=False)
    chart.x_labels = [title]
    parts = [(_("Redeemed"), figures.redeemed_fen), (_("Consumed, not yet redeemed"),
                                                      figures.consumed_fen - figures.redeemed_fen),
             (_("Held for bookings"), figures.held_fen), (_("Balance in vouchers"), figures.balance_fen),
             (_("Expired or voided"), figures.lapsed_fen), (_("Not issued"), figures.remaining_fen)]
    for label, fen in parts:
        chart.add(label, [fen])
    return chart.render(is_unicode=True)


def platform_chart(figures: ProgrammeFigures, *, title: str) -> str:
    """Held, consumed and redeemed at each platform (the largest ones, the largest on top)."""
    rows = figures.by_platform[:TOP_PLATFORMS_IN_CHART][::-1]  # pygal draws the first label at the bottom
    longest = max((len(row.label) for row in rows), default=0)
    chart = pygal.HorizontalBar(**_chart_options(title, height=max(260, 100 + 60 * len(rows))), truncate_label=-1,
                                margin_left=6 * longest)  # pygal measures Chinese labels as Latin: half as wide
    chart.x_labels = [row.label for row in rows]
    chart.add(_("Consumed"), [row.spent.consumed_fen for row in rows])
    chart.add(_("Redeemed"), [row.spent.redeemed_fen for row in rows])
    chart.add(_("Held for bookings"), [row.spent.held_fen for row in rows])
    if not rows:
        chart.no_data_text = _("No voucher has been used yet.")
    return chart.render(is_unicode=True)
