"""The figures `make bench` measures. Add one: write a `prepare(target) -> sample` function and
append a `Benchmark` to BENCHMARKS (sampled over HTTP, p50/p95), or write a `measure(dataset) ->
[Timing]` function and append a `OneOff` to ONE_OFFS (a job timed once, in-process)."""
from __future__ import annotations

import html
import random
import re
import time
from itertools import count

import requests
import sqlalchemy as sa

from bench.dataset import BENCH_PASSWORD, Account, Dataset, bench_app
from bench.runner import Benchmark, OneOff, Sample, Target, Timing

TIMEOUT = 30  # seconds per request

_CSRF_INPUT = re.compile(r"<input\b[^>]*\bname=\"csrf_token\"[^>]*>")
_VALUE = re.compile(r"\bvalue=\"([^\"]*)\"")


class BenchmarkFailed(AssertionError):
    pass


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise BenchmarkFailed(message)


def csrf_token(page: str) -> str:
    """The hidden csrf_token of the page's form."""
    found = _CSRF_INPUT.search(page)
    value = _VALUE.search(found.group(0)) if found else None
    _expect(value is not None, "no csrf_token input on the login page")
    return html.unescape(value.group(1))


def _rotating(accounts: list[Account], start: int = 0):
    """A different account for every call, round and round."""
    numbers = count(start)
    return lambda: accounts[next(numbers) % len(accounts)]


def log_in(session: requests.Session, base_url: str, account: Account,
           password: str = BENCH_PASSWORD) -> requests.Response:
    """GET /login for the CSRF token, then POST the form and follow the redirect."""
    page = session.get(f"{base_url}/login", timeout=TIMEOUT)
    _expect(page.status_code == 200, f"GET /login answered {page.status_code}")
    return session.post(f"{base_url}/login", timeout=TIMEOUT, data={
        "email": account.email, "password": password, "csrf_token": csrf_token(page.text)})


def _check_dashboard(response: requests.Response, base_url: str, account: Account) -> None:
    _expect(response.status_code == 200 and response.url == f"{base_url}/dashboard",
            f"{account.email}: ended at {response.url} with {response.status_code}, not the dashboard")
    _expect(html.escape(account.name) in response.text, f"{account.email}: the dashboard does not name the user")


def login_and_dashboard(target: Target) -> Sample:
    """A fresh session per sample; timed: POST /login and the GET /dashboard it redirects to."""
    base_url, next_account = target.base_url, _rotating(target.dataset.members)

    def sample(_i: int) -> float:
        account = next_account()
        with requests.Session() as session:
            page = session.get(f"{base_url}/login", timeout=TIMEOUT)  # untimed: connection, cookie, token
            _expect(page.status_code == 200, f"GET /login answered {page.status_code}")
            form = {"email": account.email, "password": BENCH_PASSWORD, "csrf_token": csrf_token(page.text)}
            started = time.perf_counter()
            response = session.post(f"{base_url}/login", data=form, timeout=TIMEOUT)
            elapsed = time.perf_counter() - started
        _expect(len(response.history) == 1 and response.history[0].status_code == 302,
                f"{account.email}: POST /login did not redirect (wrong password, or rate-limited?)")
        _check_dashboard(response, base_url, account)
        return elapsed

    return sample


def dashboard(target: Target) -> Sample:
    """One session logged in once (untimed); timed: GET /dashboard."""
    base_url = target.base_url
    account = target.dataset.members[len(target.dataset.members) // 2]
    session = requests.Session()
    _check_dashboard(log_in(session, base_url, account), base_url, account)

    def sample(_i: int) -> float:
        started = time.perf_counter()
        response = session.get(f"{base_url}/dashboard", timeout=TIMEOUT)
        elapsed = time.perf_counter() - started
        _check_dashboard(response, base_url, account)
        return elapsed

    return sample


def api_token(target: Target) -> Sample:
    """Timed: POST /api/v1/tokens {email, password} → 201 with a token, a different user each time."""
    base_url = target.base_url
    next_account = _rotating(target.dataset.members, start=len(target.dataset.members) // 2)
    session = requests.Session()  # keep-alive, as an API client would

    def sample(_i: int) -> float:
        account = next_account()
        started = time.perf_counter()
        response = session.post(f"{base_url}/api/v1/tokens", json={"email": account.email, "password": BENCH_PASSWORD},
                                timeout=TIMEOUT)
        elapsed = time.perf_counter() - started
        _expect(response.status_code == 201, f"{account.email}: POST /api/v1/tokens answered {response.status_code}")
        _expect(bool(response.json().get("token")), "no token in the answer")
        return elapsed

    return sample


# --- the public catalogue ---------------------------------------------------------------------

# Twenty searches as people make them, in turn: two-character Chinese keywords, longer ones, English
# words, model names and abbreviations, alone and with filters (either level of category, large
# instruments, sharing mode, industry, price range), the four sorts and a second page.
CATALOGUE_QUERIES: tuple[dict[str, str], ...] = (
    {"q": "质谱"},
    {"q": "电镜"},
    {"q": "光谱"},
    {"q": "色谱"},
    {"q": "质谱", "category": "0101"},
    {"q": "电镜", "large": "1"},
    {"q": "光谱", "category": "01", "sort": "price"},
    {"q": "色谱", "min_yuan": "100", "max_yuan": "300"},
    {"q": "拉曼光谱仪"},
    {"q": "Raman"},
    {"q": "Orbitrap"},
    {"q": "thermo", "sort": "newest"},
    {"q": "热重分析", "sort": "price"},
    {"q": "XRD"},
    {"q": "质谱", "page": "2"},
    {"q": "显微镜", "sharing_mode": "open", "sort": "name"},
    {"q": "纺织", "industry": "modern_textiles"},
    {"category": "0104"},
    {"category": "06", "large": "1", "sort": "price", "page": "2"},
    {"min_yuan": "500", "max_yuan": "1500", "sort": "newest"},
)
_RESULT_CARD = 'data-testid="instrument-card"'


def catalogue_query_label(number: int) -> str:
    """The search a sample number asks for, as it reads in the URL."""
    query = CATALOGUE_QUERIES[number % len(CATALOGUE_QUERIES)]
    return "&".join(f"{key}={value}" for key, value in query.items())


def expect_results_page(response: requests.Response, search: str, *, none_found: str) -> None:
    """GET /catalogue{search} answered 200, the form took the search (no field refused) and the page
    shows at least one instrument."""
    _expect(response.status_code == 200, f"GET /catalogue{search} answered {response.status_code}")
    _expect("is-invalid" not in response.text, f"GET /catalogue{search}: the form refused the search")
    _expect(_RESULT_CARD in response.text, f"GET /catalogue{search}: {none_found}")


def catalogue_search(target: Target) -> Sample:
    """Anonymous, one keep-alive session; timed: GET /catalogue?… for the queries in turn."""
    base_url = target.base_url
    session = requests.Session()

    def sample(i: int) -> float:
        query = CATALOGUE_QUERIES[i % len(CATALOGUE_QUERIES)]
        started = time.perf_counter()
        response = session.get(f"{base_url}/catalogue", params=query, timeout=TIMEOUT)
        elapsed = time.perf_counter() - started
        expect_results_page(response, f"?{catalogue_query_label(i)}", none_found="no instrument found")
        return elapsed

    return sample


def instrument_page(target: Target) -> Sample:
    """Anonymous, one keep-alive session; timed: GET /instruments/<id> of a published instrument drawn
    at random from the generated ones."""
    base_url, published = target.base_url, target.dataset.published
    _expect(bool(published), "the data set has no published instruments")
    draw = random.Random(4).choice
    session = requests.Session()

    def sample(_i: int) -> float:
        entry = draw(published)
        started = time.perf_counter()
        response = session.get(f"{base_url}/instruments/{entry.id}", timeout=TIMEOUT)
        elapsed = time.perf_counter() - started
        _expect(response.status_code == 200, f"GET /instruments/{entry.id} answered {response.status_code}")
        _expect(html.escape(entry.name_zh) in response.text, f"GET /instruments/{entry.id} does not name it")
        return elapsed

    return sample


BENCHMARKS: list[Benchmark] = [
    Benchmark("log in + dashboard", 50, login_and_dashboard,
              "POST /login (fresh session, CSRF token fetched untimed) and the redirected GET /dashboard; "
              "includes one argon2 verification"),
    Benchmark("dashboard page (logged in)", 50, dashboard, "GET /dashboard with a logged-in session"),
    Benchmark("POST /api/v1/tokens", 150, api_token,
              "{email, password} → 201 {token}; includes one argon2 verification"),
    Benchmark("catalogue search", 30, catalogue_search,
              f"GET /catalogue (anonymous) with {len(CATALOGUE_QUERIES)} searches in turn: keywords "
              "(two-character Chinese ones such as 质谱, 电镜, 光谱, 色谱; longer Chinese, English words, models, "
              "abbreviations) alone and with filters (category of either level, large, sharing mode, industry, "
              "price range), the sorts and a second page; each must answer 200 with at least one instrument; "
              "the page renders 20 results, the filter choices and the pager",
              case=catalogue_query_label),
    Benchmark("instrument page", 30, instrument_page,
              "GET /instruments/<id> (anonymous) of a published instrument drawn at random"),
]


# --- one-off figures, timed in-process on the benchmark database -----------------------------

CHANGED_INSTRUMENTS = 180  # edited (fees, capabilities, room) between the two releases
RETIRED_INSTRUMENTS = 20  # withdrawn between them


def catalogue_releases(dataset: Dataset) -> list[Timing]:
    """Two releases made by marketplace.catalogue.releases.publish_release, each timed with its commit: the
    first freezes the generated catalogue (its items are nearly all added since the demo district's
    last release), the second follows 200 instruments changed or retired by Core UPDATEs."""
    from core.extensions import db

    app = bench_app(dataset.url)
    with app.app_context():
        try:
            line = app.config["LARGE_INSTRUMENT_LINE_FEN"]
            first = _timed_release(line, "first release")
            changed = _change_instruments(dataset)
            second = _timed_release(line, f"second release, after {changed}")
        finally:
            db.session.remove()
            db.engine.dispose()
    return [first, second]


def _timed_release(large_line_fen: int, label: str) -> Timing:
    from core.audit import Actor
    from core.db import unit_of_work, utcnow
    from marketplace.catalogue.releases import publish_release

    started = time.perf_counter()
    with unit_of_work() as session:
        release = publish_release(session, actor=Actor.system("bench"), user=None, now=utcnow(),
                                  large_line_fen=large_line_fen)
        counts = (f"no. {release.number}: {release.instrument_count:,} instruments, {release.added_count:,} "
                  f"added, {release.changed_count:,} changed, {release.withdrawn_count:,} withdrawn")
    return Timing(f"{label} ({counts})", time.perf_counter() - started)


def _change_instruments(dataset: Dataset) -> str:
    """Edit CHANGED_INSTRUMENTS published instruments (district enterprises' rate up a tenth, one more
    capability, another room; search_text made again) and retire RETIRED_INSTRUMENTS, committed."""
    from core.db import unit_of_work, utcnow
    from marketplace.registry.models import Instrument
    from marketplace.registry.search import instrument_index_text

    table = Instrument.__table__
    picked = random.Random(2).sample(dataset.published, CHANGED_INSTRUMENTS + RETIRED_INSTRUMENTS)
    edited, retired = picked[:CHANGED_INSTRUMENTS], picked[CHANGED_INSTRUMENTS:]
    now = utcnow()
    searched = ("name_zh", "name_en", "model", "manufacturer", "capabilities", "hourly_rate_district_enterprise_fen")
    with unit_of_work() as session:
        rows = session.execute(sa.select(table.c.id, *(table.c[name] for name in searched))
                               .where(table.c.id.in_([entry.id for entry in edited]))).mappings().all()
        updates = []
        for row in rows:
            values = {**row, "capabilities": [*row["capabilities"], "委托检测服务"]}
            rate = row["hourly_rate_district_enterprise_fen"]
            updates.append({"b_id": row["id"], "capabilities": values["capabilities"],
                            "hourly_rate_district_enterprise_fen": rate * 11 // 10, "room": "新址 101",
                            "search_text": instrument_index_text(values), "updated_at": now})
        session.execute(sa.update(table).where(table.c.id == sa.bindparam("b_id")), updates)
        session.execute(sa.update(table).where(table.c.id.in_([entry.id for entry in retired]))
                        .values(state="retired", updated_at=now))
    return f"{len(updates)} instruments edited and {len(retired)} retired"


IMPORT_ROWS = 5_000


def xlsx_import(dataset: Dataset) -> list[Timing]:
    """A generated file of 5,000 good rows (made untimed) read and imported as drafts
    (marketplace.registry.imports.read_workbook, import_instruments) into the first generated platform by its admin,
    then committed; timed: the import (every row read and checked, the instruments and their audit entries
    written) plus the commit."""
    from core.audit import Actor
    from core.db import unit_of_work, utcnow
    from core.extensions import db
    from core.models import Platform, Role, User
    from marketplace.registry.imports import import_instruments, read_workbook
    from marketplace.registry.models import Instrument
    from testsupport.workbooks import rows_xlsx, sample_row

    app = bench_app(dataset.url)
    with app.app_context(), app.test_request_context():  # messages are translated as for a request
        try:
            with unit_of_work() as session:
                user = session.scalar(sa.select(User).where(User.email == dataset.admins[0].email))
                platform = session.get(Platform, min(user.organisation_ids(Role.PLATFORM_ADMIN)))
                first = (session.scalar(sa.select(sa.func.max(Instrument.id))) or 0) + 1
                data = rows_xlsx([sample_row(first + n, 资产编号=f"KQ-BENCH-{first + n:07d}")
                                  for n in range(IMPORT_ROWS)])
                started = time.perf_counter()
                import_instruments(session, platform, user, actor=Actor.system("bench:import"),
                                   rows=read_workbook(data), submit=False, now=utcnow())
                import_seconds = time.perf_counter() - started
                started = time.perf_counter()
                session.commit()
                commit_seconds = time.perf_counter() - started
        finally:
            db.session.remove()
            db.engine.dispose()
    return [Timing(f"{IMPORT_ROWS:,} rows as drafts: import {import_seconds:.1f} s + commit {commit_seconds:.1f} s",
                   import_seconds + commit_seconds)]


ONE_OFFS: list[OneOff] = [
    OneOff("release of 20,000 instruments", 10, catalogue_releases,
           "marketplace.catalogue.releases.publish_release with its commit, in-process on the benchmark database: "
           "the first release of the generated catalogue, then a second one after "
           f"{CHANGED_INSTRUMENTS} instruments were edited and {RETIRED_INSTRUMENTS} retired"),
    OneOff("XLSX import of 5,000 rows", 20, xlsx_import,
           "marketplace.registry.imports.read_workbook and import_instruments in-process (the file generated untimed), "
           "committed"),
]
