"""The vouchers' jobs, each safe to run twice: the daily expiry, and the nightly check that every voucher's columns
equal its ledger."""
from __future__ import annotations

import logging
from datetime import datetime

from flask_babel import lazy_gettext as _l

from core.db import unit_of_work, utcnow
from core.extensions import db
from core.scheduler import Job
from vouchers import ledger, services
from vouchers.models import Voucher

log = logging.getLogger(__name__)


def expire_vouchers(now: datetime | None = None) -> int:
    """Vouchers past validity expire; their balance is released to the programme's record (an EXPIRE
    entry). A second run finds none left: the vouchers expired."""
    with unit_of_work() as session:
        return services.expire_vouchers(session, now=now or utcnow())


def check_voucher_ledger() -> int:
    """Every voucher whose balance, held, consumed or redeemed column differs from its ledger is logged
    as an error (for the operators' alerting); returns how many. Reads only."""
    session = db.session
    mismatched = ledger.mismatched_vouchers(session)
    for voucher_id in mismatched:
        voucher = session.get(Voucher, voucher_id)
        log.error("voucher %s (id %s) does not equal its ledger: columns %s, ledger %s", voucher.serial, voucher_id,
                  {name: getattr(voucher, name) for name in ledger.COLUMNS}, ledger.ledger_totals(session, voucher_id))
    return len(mismatched)


JOBS: list[Job] = [
    Job("expire_vouchers", expire_vouchers, "cron", {"hour": 0, "minute": 10, "timezone": "Asia/Shanghai"},
        _l("Expire vouchers past their validity")),
    Job("check_voucher_ledger", check_voucher_ledger, "cron", {"hour": 2, "minute": 40, "timezone": "Asia/Shanghai"},
        _l("Check every voucher against its ledger")),
]
