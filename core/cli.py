"""`flask jobs …` and `flask demo load`."""
from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from core.jobs import optimize_database
from core.scheduler import registered_jobs, run_job, serve_forever

jobs_cli = AppGroup("jobs", help="List, run and schedule background jobs.")
demo_cli = AppGroup("demo", help="The demo district.")


@jobs_cli.command("list")
def list_jobs() -> None:
    for job in registered_jobs(current_app).values():
        args = ", ".join(f"{k}={v}" for k, v in job.trigger_args.items())
        click.echo(f"{job.id}\t{job.trigger}({args})")


@jobs_cli.command("run")
@click.argument("name")
def run(name: str) -> None:
    jobs = registered_jobs(current_app)
    if name not in jobs:
        raise click.BadParameter(f"no job {name!r}; `flask jobs list` shows them", param_hint="NAME")
    result = run_job(current_app._get_current_object(), jobs[name])
    click.echo(f"{name}: {result}")


@jobs_cli.command("scheduler")
def scheduler() -> None:
    """Run the job scheduler in this process (it waits while another holds the lock)."""
    serve_forever(current_app._get_current_object())


@demo_cli.command("load")
def load_demo() -> None:
    """Load the demo district; running it again adds nothing twice."""
    from core.demo import DEMO_ACCOUNTS, load

    created = load(everything=True)
    optimize_database()  # fresh planner statistics for what was just loaded
    click.echo(f"demo district: {created} new records")
    click.echo("demo accounts (password kequip-demo):")
    for email, role in DEMO_ACCOUNTS:
        click.echo(f"  {email:28} {role}")


def register(app: Flask) -> None:
    app.cli.add_command(jobs_cli)
    app.cli.add_command(demo_cli)
