"""Uploads with bounded work: the peak memory of the largest uploads the import allows, and the time to
refuse the 20-million-blank-row file in its three shapes. `python -m bench.uploads` measures these alone
and rewrites their section of docs/benchmarks.md; `python -m bench` measures them with the rest.

Memory is measured in a child process per file, so nothing else the harness holds counts: the kernel's
peak resident set size of that process (VmHWM in /proc/self/status, the counter getrusage reports as
ru_maxrss), reset through /proc/self/clear_refs just before the work, less the resident size just
before it: what the import itself needs on top of the loaded app. Linux only."""
from __future__ import annotations

import gc
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from marketplace.registry.imports import ImportLimits

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "benchmarks.md"
HEADING = "## Uploads: bounded work"
MEMORY_TARGET_MB = 100.0
REFUSAL_TARGET_SECONDS = 1.0
BLANK_ROWS = 20_000_000
LONG_TEXT = "三重四极杆质谱配超高效液相色谱" * 50  # 700 characters: a long description
STRING = "液相色谱质谱联用仪农药残留检测药物代谢物定量分析液体样品要求三重四极杆质谱"  # 36 characters: near 16 MB in all


@dataclass(frozen=True)
class Figure:
    name: str
    what: str
    value: float
    unit: str  # "MB" or "s"
    target: float

    @property
    def met(self) -> bool:
        return self.value < self.target if self.unit == "MB" else self.value <= self.target

    def shown(self, value: float) -> str:
        if self.unit == "MB":
            return f"{value:.1f} MB"
        return f"{value:.2f} s" if value >= 0.1 else f"{value * 1000:.1f} ms"


# --- the files --------------------------------------------------------------------------------

def largest_import(limits: ImportLimits) -> bytes:
    """The most the limits allow in one file as a platform would fill it: every row (5,000), every
    column of the template (125,000 cells), 700-character descriptions (near the 40 MB unpacked)."""
    from testsupport.workbooks import rows_xlsx, sample_row

    return rows_xlsx([sample_row(n, 仪器描述=f"{n} {LONG_TEXT}") for n in range(limits.max_rows)])


def largest_string_table(limits: ImportLimits) -> bytes:
    """A shared string table as long as the limits allow (one string per filled cell: 125,000), each
    string distinct: what openpyxl reads whole before any row."""
    from testsupport.workbooks import crafted_xlsx

    return crafted_xlsx(['<row r="2"><c r="A2" t="s"><v>0</v></c></row>'],
                                shared_strings=(f"{n}{STRING}" for n in range(limits.max_cells)))


def blank_rows_files() -> list[tuple[str, bytes]]:
    from testsupport.workbooks import crafted_xlsx

    cell = f'<row r="{BLANK_ROWS + 1}"><c r="A{BLANK_ROWS + 1}" t="inlineStr"><is><t>x</t></is></c></row>'
    return [
        (f"{BLANK_ROWS:,} blank `<row/>` elements", crafted_xlsx(itertools.repeat("<row/>", BLANK_ROWS))),
        (f"{BLANK_ROWS:,} rows claimed by the sheet's dimension",
         crafted_xlsx(dimension=f"A1:Y{BLANK_ROWS + 1}")),
        (f"one cell in row {BLANK_ROWS + 1:,}, the dimension claiming 2 rows",
         crafted_xlsx([cell], dimension="A1:Y2")),
    ]


# --- the child processes ----------------------------------------------------------------------

def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> float:
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # the peak resident size starts again from the current one
    return _status("VmRSS")


def _child(kind: str, path: str) -> dict:
    """In a process of its own: import the file (kind "import") into a new SQLite database, as the
    page does (read with no transaction open, then checked and written, committed), or only read it
    (kind "read"). Returns the seconds, the MB the work added to the peak, and what it found."""
    import flask_migrate
    from sqlalchemy import select

    from bench.dataset import bench_app
    from core.audit import Actor
    from core.db import unit_of_work, utcnow
    from core.demo import load as load_demo
    from core.extensions import db
    from core.models import Platform, Role, User
    from marketplace.registry import imports

    data = Path(path).read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        app = bench_app(f"sqlite:///{folder}/uploads.sqlite")
        with app.app_context(), app.test_request_context():
            flask_migrate.upgrade()
            load_demo()
            user = db.session.scalar(select(User).where(User.email == "platform@kequip.test"))
            user_id, platform_id = user.id, min(user.organisation_ids(Role.PLATFORM_ADMIN))
            db.session.commit()
            before = _reset_peak()
            started = time.perf_counter()
            rows = imports.read_workbook(data)
            found = f"{len(rows):,} row{'s' if len(rows) != 1 else ''} read"
            if kind == "import":
                with unit_of_work() as session:
                    user = session.get(User, user_id)
                    result = imports.import_instruments(session, session.get(Platform, platform_id), user,
                                                        actor=Actor.system("bench:uploads"), rows=rows, submit=False,
                                                        now=utcnow())
                found = f"{result.imported:,} instruments imported"
            seconds = time.perf_counter() - started
            peak = _status("VmHWM")
            db.session.remove()
            db.engine.dispose()
    return {"seconds": seconds, "mb": peak - before, "before_mb": before, "found": found}


def _in_child(kind: str, data: bytes) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".xlsx") as file:
        file.write(data)
        file.flush()
        done = subprocess.run([sys.executable, "-m", "bench.uploads", "--child", kind, file.name], cwd=ROOT,
                              capture_output=True, text=True, check=False,
                              env=os.environ | {"KEQUIP_INSTANCE_DIR": tempfile.gettempdir()})
    if done.returncode != 0:
        raise RuntimeError(f"the child process failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the figures ------------------------------------------------------------------------------

def _unpacked_mb(data: bytes) -> float:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return sum(part.file_size for part in archive.infolist()) / 1024 / 1024


def measure() -> list[Figure]:
    from config import TestingConfig
    from core.app import create_app
    from core.errors import RuleBroken
    from marketplace.registry import imports

    figures = []
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI="sqlite://")
    with app.test_request_context():
        limits = imports.ImportLimits.configured()
        largest, table = largest_import(limits), largest_string_table(limits)
        blanks = blank_rows_files()
    done = _in_child("import", largest)
    figures.append(Figure(
        "Peak memory: importing the largest allowed XLSX",
        f"{limits.max_rows:,} rows × every column, {_unpacked_mb(largest):.1f} MB unpacked from a "
        f"{len(largest) / 1024 / 1024:.1f} MB file: read with no transaction open, then checked and "
        f"written to SQLite ({done['found']}, {done['seconds']:.1f} s; {done['before_mb']:.0f} MB resident before)",
        done["mb"], "MB", MEMORY_TARGET_MB))
    done = _in_child("read", table)
    figures.append(Figure(
        "Peak memory: reading the largest allowed shared-string table",
        f"{limits.max_cells:,} distinct strings, {_unpacked_mb(table):.1f} MB unpacked "
        f"({done['found']}, {done['seconds']:.1f} s)", done["mb"], "MB", MEMORY_TARGET_MB))
    with app.test_request_context():
        for shape, data in blanks:
            started = time.perf_counter()
            try:
                imports.read_workbook(data)
                code = "not refused"
            except RuleBroken as error:
                code = error.code
            seconds = time.perf_counter() - started
            figures.append(Figure(
                "Refusing the 20-million-blank-row file",
                f"{shape}: {len(data) / 1024 / 1024:.2f} MB file, {_unpacked_mb(data):.1f} MB unpacked → {code}",
                seconds if code != "not refused" else float("inf"), "s", REFUSAL_TARGET_SECONDS))
    return figures


def section(figures: list[Figure]) -> str:
    lines = [HEADING, "",
             "Measured in-process (the refusals) and in child processes (the memory), independently of the "
             "data set; `python -m bench.uploads` measures these alone. Memory: the kernel's peak resident set "
             "size of the child (VmHWM, the counter getrusage reports as ru_maxrss), reset through "
             "/proc/self/clear_refs just before the work, less the resident size just before it. Load average "
             f"when measured: {' / '.join(f'{value:.2f}' for value in os.getloadavg())} on {os.cpu_count()} CPUs "
             "(the seconds in the descriptions grow with it).", "",
             "| figure | what | measured | target | met |", "|---|---|---|---|---|"]
    for figure in figures:
        target = f"< {figure.target:g} MB" if figure.unit == "MB" else f"≤ {figure.target:g} s"
        lines.append(f"| {figure.name} | {figure.what} | {figure.shown(figure.value)} | {target} | "
                     f"{'yes' if figure.met else '**no**'} |")
    return "\n".join(lines) + "\n"


def insert_section(report: str, figures: list[Figure]) -> str:
    """The report with this section in place of the one it had, or added at its end."""
    text = section(figures)
    if HEADING not in report:
        return report.rstrip("\n") + "\n\n" + text
    before, after = report.split(HEADING, 1)
    rest = after.split("\n## ", 1)
    return before + text + ("\n## " + rest[1] if len(rest) > 1 else "")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        print(json.dumps(_child(argv[1], argv[2])))
        return 0
    os.environ.setdefault("KEQUIP_INSTANCE_DIR", tempfile.gettempdir())
    figures = measure()
    for figure in figures:
        print(f"{figure.name:<62} {figure.shown(figure.value):>10}  {'met' if figure.met else 'MISSED'}  {figure.what}")
    REPORT.write_text(insert_section(REPORT.read_text(encoding="utf-8"), figures), encoding="utf-8")
    print(f"written: {REPORT.relative_to(ROOT)}")
    return 0 if all(figure.met for figure in figures) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
