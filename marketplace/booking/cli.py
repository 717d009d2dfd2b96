"""`flask bookings …`: checks of the booking calendar."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from core.clock import to_local
from core.extensions import db
from marketplace.booking.services import find_overlapping_use

cli = AppGroup("bookings", help="Checks of the booking calendar.")


@cli.command("check-overlaps")
def check_overlaps() -> None:
    """List bookings of one instrument that overlap while holding or having used their time; exit 1 if any."""
    pairs = find_overlapping_use(db.session)
    for first, second in pairs:
        click.echo(f"instrument {first.instrument_id}: " + " overlaps ".join(
            f"#{b.id} {b.state.value} {to_local(b.start_at):%Y-%m-%d %H:%M}–{to_local(b.block_end_at):%H:%M}"
            for b in (first, second)))
    click.echo(f"{len(pairs)} overlapping pairs")
    if pairs:
        raise SystemExit(1)
