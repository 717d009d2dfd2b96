"""The catalogue's jobs: the scheduled quarterly release."""
from __future__ import annotations

from datetime import datetime

from flask import current_app
from flask_babel import lazy_gettext as _l

from core.audit import Actor
from core.db import unit_of_work, utcnow
from core.scheduler import Job
from marketplace.catalogue import releases


def publish_scheduled_release(now: datetime | None = None) -> int:
    """The catalogue release of the current quarter (Asia/Shanghai), unless it exists: 1 if made, else 0."""
    with unit_of_work() as session:
        release = releases.publish_period_release(
            session, actor=Actor.system("job:publish_scheduled_release"), now=now or utcnow(),
            large_line_fen=current_app.config["LARGE_INSTRUMENT_LINE_FEN"])
    return 0 if release is None else 1


JOBS: list[Job] = [
    # Daily at 01:00 Beijing time: the first run of a quarter (01:00 on its first day) makes the quarter's
    # release; the other runs find it made, and make it should the first day's run have been missed.
    Job("publish_scheduled_release", publish_scheduled_release, "cron",
        {"hour": 1, "minute": 0, "timezone": "Asia/Shanghai"}, _l("Publish the quarterly catalogue release")),
]
