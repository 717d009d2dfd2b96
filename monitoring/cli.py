"""`flask monitoring …`: recompute the usage metrics of a range."""
from __future__ import annotations

from datetime import date, datetime

import click
from flask.cli import AppGroup

from core.db import unit_of_work, utcnow
from monitoring import metrics

cli = AppGroup("monitoring", help="Usage monitoring: metrics.")


def _day(_ctx, _param, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("a day as YYYY-MM-DD") from None


@cli.command("recompute")
@click.option("--from", "first", required=True, callback=_day, help="First day, YYYY-MM-DD (Asia/Shanghai)")
@click.option("--to", "last", required=True, callback=_day, help="Last day, included")
def recompute(first: date, last: date) -> None:
    """Recompute every instrument's daily figures over [--from, --to] and say how many rows changed."""
    if last < first:
        raise click.BadParameter("--to is before --from", param_hint="--to")
    started = datetime.now()
    with unit_of_work() as session:
        result = metrics.recompute(session, first, last, now=utcnow())
    seconds = (datetime.now() - started).total_seconds()
    click.echo(f"{result.days} instrument-days recomputed, {result.changed} changed ({seconds:.1f} s)")
