"""`python -m bench [--databases sqlite postgresql] [--samples N] [--only NAME …] [--bookings N]`: build
district-L on each database, serve it with gunicorn, measure every figure (or those --only names), write
docs/benchmarks.md (with --only, .bench/benchmarks.md), print a summary."""
from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
WORK_DIR = ROOT / ".bench"
REPORT = ROOT / "docs" / "benchmarks.md"
DATABASES = ("sqlite", "postgresql")

if TYPE_CHECKING:
    from bench.dataset import Dataset
    from bench.report import DatabaseRun
    from bench.runner import OneOff, OneOffResult, Throughput, ThroughputResult
    from bench.server import AppServer

log = logging.getLogger("bench")


CpuProbe = Callable[[], float]  # CPU seconds the database server's processes have used so far


@contextmanager
def sqlite_database() -> Iterator[tuple[str, str, CpuProbe | None]]:
    path = WORK_DIR / "kequip-bench.sqlite"
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"),
                     path.with_name(path.name + "-journal")):
        leftover.unlink(missing_ok=True)
    yield f"sqlite:///{path}", f"SQLite {sqlite3.sqlite_version}", None  # SQLite works inside the app


@contextmanager
def postgresql_database() -> Iterator[tuple[str, str, CpuProbe | None]]:
    import psycopg

    from bench.server import process_tree_cpu
    from testsupport.servers import PostgresServer

    server = PostgresServer()
    try:
        server.start()
        url = server.create_database("kequip_bench")
        with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=kequip_bench") as connection:
            version = connection.execute("SHOW server_version").fetchone()[0]
        postmaster = int((Path(server.data) / "postmaster.pid").read_text().split()[0])
        yield url, f"PostgreSQL {version.split()[0]}", lambda: process_tree_cpu(postmaster)
    finally:
        server.stop()


def argon2_note() -> str:
    """How long one verification of the app's password hash takes here, in-process: the floor
    under every figure that checks a password. The parameters are read from the app's own hasher."""
    from core.auth import _hasher as hasher  # the one PasswordHasher the app hashes and verifies with

    hashed = hasher.hash("kequip-bench")
    timings = []
    for _ in range(10):
        started = time.perf_counter()
        hasher.verify(hashed, "kequip-bench")
        timings.append((time.perf_counter() - started) * 1000)
    return (f"One argon2{hasher.type.name.lower()} verification with the app's parameters "
            f"(time_cost={hasher.time_cost}, memory_cost={hasher.memory_cost} KiB, parallelism={hasher.parallelism}; "
            f"read from core.auth's hasher) takes {statistics.median(timings):.0f} ms (median of 10, in-process) "
            "on this machine: every figure that checks a password includes one.")


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    from bench.bookings import BOOKINGS
    from bench.runner import Settings

    defaults = Settings()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--databases", nargs="+", choices=DATABASES, default=list(DATABASES))
    parser.add_argument("--samples", type=int, default=defaults.samples, help="samples per figure")
    parser.add_argument("--warmups", type=int, default=defaults.warmups, help="warm-up requests per figure")
    parser.add_argument("--time-budget", type=float, default=defaults.time_budget,
                        help="seconds per figure at most, warm-ups included")
    parser.add_argument("--only", nargs="+", metavar="NAME", default=[],
                        help="measure only the figures whose name contains one of these (any case), e.g. "
                             "'busy week'; the report then goes to .bench/benchmarks.md unless --output says")
    parser.add_argument("--bookings", type=int, default=BOOKINGS,
                        help="bookings to generate: fewer build a quicker data set to iterate on")
    parser.add_argument("--output", type=Path, help="the Markdown report to write")
    arguments = parser.parse_args(argv)
    if arguments.output is None:
        arguments.output = WORK_DIR / "benchmarks.md" if arguments.only else REPORT
    return arguments


def selected(figures: list, only: list[str]) -> list:
    """The figures (benchmarks, throughputs, one-offs) whose name contains one of `only`; all without it."""
    wanted = [name.casefold() for name in only]
    return [figure for figure in figures if not wanted or any(name in figure.name.casefold() for name in wanted)]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    WORK_DIR.mkdir(exist_ok=True)
    # Before config is imported: the harness's own app keeps its files out of instance/.
    os.environ.setdefault("KEQUIP_INSTANCE_DIR", str(WORK_DIR / "instance"))

    from bench import dataset as datasets
    from bench import uploads
    from bench.booking_figures import BENCHMARKS as BOOKING_BENCHMARKS
    from bench.booking_figures import THROUGHPUTS
    from bench.busy_week import BENCHMARKS as BUSY_WEEK_BENCHMARKS
    from bench.figures import BENCHMARKS, ONE_OFFS
    from bench.gateway_figures import BENCHMARKS as GATEWAY_BENCHMARKS
    from bench.monitoring_figures import BENCHMARKS as MONITORING_BENCHMARKS
    from bench.monitoring_figures import ONE_OFFS as MONITORING_ONE_OFFS
    from bench.monitoring_figures import THROUGHPUTS as MONITORING_THROUGHPUTS
    from bench.report import DatabaseRun, cpu_gauge, load_average, render
    from bench.runner import Settings, Target, run
    from bench.server import AppServer
    from bench.vouchers import ONE_OFFS as VOUCHER_ONE_OFFS

    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    settings = Settings(samples=arguments.samples, warmups=arguments.warmups, time_budget=arguments.time_budget)
    started, load_at_start, gauge_at_start = datetime.now(timezone.utc), load_average(), cpu_gauge()
    sources = {"sqlite": sqlite_database, "postgresql": postgresql_database}
    runs: list[DatabaseRun] = []
    for name in arguments.databases:
        with sources[name]() as (url, label, database_cpu):
            log.info("%s: building %s", label, datasets.DatasetSize().name)
            built = datasets.build(url, booking_count=arguments.bookings)
            log.info("%s: generated in %.1f s (schema and demo %.1f s, bulk %.1f s of which instruments %.1f s) "
                     "and the bookings in %.1f s (written in %.1f s): %s", label, built.total_seconds,
                     built.schema_seconds, built.bulk_seconds, built.instrument_seconds, built.bookings.seconds,
                     built.bookings.insert_seconds, built.counts)
            results, load_before, gauge_before = [], load_average(), cpu_gauge()
            # before the server: the metrics one-offs build the days the monitoring dashboard reads
            one_offs = [_one_off(one_off, built, label) for one_off in selected(MONITORING_ONE_OFFS, arguments.only)]
            with AppServer(url, WORK_DIR / f"gunicorn-{name}.log") as server:
                target = Target(server.base_url, built)
                for benchmark in selected([*BENCHMARKS, *BOOKING_BENCHMARKS, *BUSY_WEEK_BENCHMARKS,
                                           *GATEWAY_BENCHMARKS, *MONITORING_BENCHMARKS], arguments.only):
                    result = run(benchmark, target, settings)
                    if result.error and (ended := server.exit_status()):
                        result = replace(result, error=f"{result.error} ({ended})")
                    if benchmark.memory:
                        result = replace(result, note="the workers' resident memory after it: " + ", ".join(
                            f"{mib:.0f} MiB" for mib in server.worker_memory()))
                        log.info("%s: %s: %s", label, benchmark.name, result.note)
                    results.append(result)
                    log.info("%s: %s: n=%d p50=%s p95=%s%s", label, benchmark.name, result.count,
                             _ms(result.p50), _ms(result.p95), f" ERROR {result.error}" if result.error else "")
            # after that server: each throughput figure with a server of its own (its worker count)
            throughputs = [_throughput(figure, url, built, name, label, AppServer, database_cpu)
                           for figure in selected([*THROUGHPUTS, *MONITORING_THROUGHPUTS], arguments.only)
                           if name in figure.databases]
            # after the servers: the one-off jobs write (releases, an import) and have the CPUs to themselves
            one_offs += [_one_off(one_off, built, label) for one_off in selected([*ONE_OFFS, *VOUCHER_ONE_OFFS],
                                                                                  arguments.only)]
            runs.append(DatabaseRun(label, built, results, one_offs, throughputs=throughputs,
                                    load=f"{load_before} before the figures, {load_average()} after them",
                                    gauge=f"{gauge_before} before the figures, {cpu_gauge()} after them"))

    upload_figures = uploads.measure()  # independent of the data set: once, after the databases' figures
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    notes = [argon2_note(), "Requests are sequential, but the machine may run other work: a load average above "
             f"the CPU count ({os.cpu_count()}) means other processes shared the CPUs and inflated the figures, "
             "the p95 most.",
             "Each database is ANALYZEd after the bulk load, so the planners know the data (on SQLite: "
             "sqlite_stat1; PostgreSQL gets VACUUM ANALYZE after the bookings, as autovacuum would soon run "
             "it). Without statistics SQLite walks the state index for a price range or the newest-first "
             "browse instead of the price or publication-time index: several times slower on district-L.",
             "The booking figures use district-L's 200 busiest instruments (a week holds about 20 of their "
             "bookings, most of them active ahead of today), its 400 free instruments (nothing to pay: "
             "booking creation involves no gateway) and the member with 5,000 bookings in their feed's year."]
    report = render(runs, settings, started=started, load_at_start=load_at_start, load_at_end=load_average(),
                    gauge_at_start=gauge_at_start, gauge_at_end=cpu_gauge(), notes=notes)
    arguments.output.write_text(uploads.insert_section(report, upload_figures), encoding="utf-8")
    print(summary(runs, arguments.output))
    return 0 if all(r.error is None for each in runs for r in [*each.results, *each.one_offs, *each.throughputs]) \
        and all(figure.met for figure in upload_figures) else 1


def _one_off(one_off: OneOff, built: Dataset, label: str) -> OneOffResult:
    from bench.report import duration
    from bench.runner import measure_once

    outcome = measure_once(one_off, built)
    for timing in outcome.timings:
        log.info("%s: %s: %s (%s)", label, one_off.name, duration(timing.seconds), timing.label)
    if outcome.error:
        log.info("%s: %s: ERROR %s", label, one_off.name, outcome.error)
    return outcome


def _throughput(figure: Throughput, url: str, built: Dataset, name: str, label: str,
                server_class: type[AppServer], database_cpu: CpuProbe | None) -> ThroughputResult:
    """Serve the database with the figure's worker count and measure it, with the CPU time the server,
    the database server and these clients spent per request; a server that does not start is the
    figure's error."""
    from bench.runner import ThroughputResult, measure_throughput
    from bench.server import ServerFailed

    try:
        with server_class(url, WORK_DIR / f"gunicorn-{name}-{figure.workers}-workers.log",
                          workers=figure.workers) as server:
            probes = {"app": server.cpu_seconds, "database": database_cpu, "clients": _own_cpu}
            probes = {name: probe for name, probe in probes.items() if probe is not None}
            result = measure_throughput(figure, server.base_url, built, cpu=probes)
            if result.error and (ended := server.exit_status()):
                result = replace(result, error=f"{result.error} ({ended})")
    except ServerFailed as error:
        result = ThroughputResult(figure, error=str(error))
    log.info("%s: %s: %d requests, %d errors in %.1f s: %s/s%s", label, figure.name, result.requests, result.errors,
             result.seconds, f"{result.per_second:.1f}" if result.per_second else "–",
             f" ERROR {result.error}" if result.error else "")
    return result


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}ms"


def summary(runs: list[DatabaseRun], output: Path) -> str:
    from bench.report import duration

    lines = []
    for each in runs:
        lines.append(f"{each.label}: district-L generated in {each.dataset.total_seconds:.1f} s, "
                     f"its {each.dataset.bookings.count:,} bookings in {each.dataset.bookings.seconds:.1f} s")
        for result in each.results:
            verdict = "met" if result.met else "MISSED"
            lines.append(f"  {result.benchmark.name:<30} p50 {_ms(result.p50):>9}  p95 {_ms(result.p95):>9}  "
                         f"target {result.benchmark.target_ms:g}ms  {verdict}" + (f"  ({result.note})" if result.note else ""))
        for result in each.throughputs:
            verdict = "met" if result.met else "MISSED"
            rate = f"{result.per_second:.1f}/s" if result.per_second else "–"
            lines.append(f"  {result.figure.name:<30} {rate:>9}  {result.errors} errors  "
                         f"target {result.figure.target_per_second:g}/s  {verdict}"
                         + (f"  ({result.note})" if result.note else ""))
        for outcome in each.one_offs:
            target = outcome.one_off.target_seconds
            for timing in outcome.timings:
                verdict = "met" if timing.seconds <= target else "MISSED"
                lines.append(f"  {outcome.one_off.name:<30} {duration(timing.seconds):>9}   target "
                             f"{duration(target, target=True)}  {verdict}  {timing.label}")
            if outcome.error:
                lines.append(f"  {outcome.one_off.name:<30} MISSED: {outcome.error}")
    lines.append(f"written: {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
