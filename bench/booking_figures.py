"""The booking calendar's figures on district-L's 1,000,000 bookings: one instrument's free
and busy time for a week (the service in-process, and the API), the catalogue filtered on free time (API
and page), a private iCalendar feed of 5,000 events, and bookings made through the API by many clients
at once against gunicorn with 4 workers on PostgreSQL."""
from __future__ import annotations

import html
import time
from datetime import date, datetime, timedelta
from itertools import count

import requests

from bench.bookings import FEED_EVENTS, FUTURE_WEEKS, open_days
from bench.dataset import BENCH_PASSWORD, Dataset, bench_app
from bench.figures import TIMEOUT, BenchmarkFailed, _expect, expect_results_page
from bench.runner import Benchmark, Request, Sample, Target, Throughput
from core.clock import local_midnight, to_local

WEEKS_AHEAD = FUTURE_WEEKS  # the weeks asked about: this one and the next ones, where the active bookings are


def _week(dataset: Dataset, number: int) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) Asia/Shanghai of the week `number` weeks after the generation's."""
    today = to_local(dataset.bookings.now).date()
    start = local_midnight(today - timedelta(days=today.weekday()) + timedelta(weeks=number))
    return start, start + timedelta(weeks=1)


def week_label(number: int) -> str:
    week = number % WEEKS_AHEAD
    return "this week" if week == 0 else f"week +{week}"


def _iso(instant: datetime) -> str:
    """An instant as the API takes it: Asia/Shanghai wall-clock time with its offset."""
    return to_local(instant).isoformat(timespec="seconds")


def _hot(dataset: Dataset, number: int) -> int:
    _expect(bool(dataset.bookings.hot), "the data set has no busy instruments")
    return dataset.bookings.hot[number % len(dataset.bookings.hot)]


# --- an instrument's week -----------------------------------------------------------------------

class _InProcess:
    """The app on the benchmark database, its context pushed, for figures that call services directly."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.app = bench_app(dataset.url)
        self.context = self.app.app_context()
        self.context.push()

    def close(self) -> None:
        from core.extensions import db

        db.session.remove()
        db.engine.dispose()
        self.context.pop()


class _AvailabilityService(_InProcess):
    def __call__(self, number: int) -> float:
        from core.extensions import db
        from marketplace.booking.availability import compute_availability
        from marketplace.registry.models import Instrument

        dataset = self.dataset
        session = db.session
        instrument = session.get(Instrument, _hot(dataset, number))  # untimed, as the caller has it
        start, end = _week(dataset, number % WEEKS_AHEAD)
        started = time.perf_counter()
        found = compute_availability(session, instrument, start, end)
        elapsed = time.perf_counter() - started
        db.session.remove()  # a fresh session per sample, as per request
        _expect(bool(found.free or found.busy), f"instrument {instrument.id}: neither free nor busy time")
        return elapsed


def availability_service(target: Target) -> Sample:
    """In-process, untimed: the app and the instrument; timed: compute_availability for one week."""
    return _AvailabilityService(target.dataset)


def availability_api(target: Target) -> Sample:
    """Anonymous, one keep-alive session; timed: GET /api/v1/instruments/{id}/availability for a week."""
    base_url, dataset = target.base_url, target.dataset
    session = requests.Session()

    def sample(number: int) -> float:
        instrument_id = _hot(dataset, number)
        start, end = _week(dataset, number % WEEKS_AHEAD)
        url = f"{base_url}/api/v1/instruments/{instrument_id}/availability"
        started = time.perf_counter()
        response = session.get(url, params={"start": _iso(start), "end": _iso(end)}, timeout=TIMEOUT)
        elapsed = time.perf_counter() - started
        _expect(response.status_code == 200, f"GET {url} answered {response.status_code}: {response.text[:200]}")
        _expect({"free", "busy"} <= set(response.json()), f"GET {url}: no free and busy in the answer")
        return elapsed

    return sample


# --- the catalogue, free between … and … ----------------------------------------------------------

# (day: open days after today, from, until, other filters): the first open day after today, the next ones,
# mornings and afternoons, alone and with a keyword, a category, a sort or a second page
FREE_QUERIES: tuple[tuple[int, str, str, dict[str, str]], ...] = (
    (1, "09:00", "11:00", {}),
    (1, "14:00", "17:00", {}),
    (2, "08:30", "12:00", {}),
    (3, "13:30", "17:30", {}),
    (5, "10:00", "11:30", {}),
    (10, "09:00", "10:00", {}),
    (20, "15:00", "16:00", {}),
    (1, "09:00", "11:00", {"q": "质谱"}),
    (2, "14:00", "16:00", {"q": "电镜"}),
    (3, "09:30", "11:30", {"category": "0102"}),
    (4, "13:30", "15:30", {"category": "06", "sort": "price"}),
    (6, "08:30", "10:30", {"sort": "newest", "page": "2"}),
)


def _free_window(dataset: Dataset, number: int) -> tuple[datetime, datetime, dict[str, str]]:
    days_ahead, opens, closes, filters = FREE_QUERIES[number % len(FREE_QUERIES)]
    today = to_local(dataset.bookings.now).date()
    day = open_days(today + timedelta(days=1), today + timedelta(weeks=WEEKS_AHEAD))[days_ahead - 1]
    midnight = local_midnight(day)
    return (midnight + _clock(opens), midnight + _clock(closes), filters)


def _clock(text: str) -> timedelta:
    hours, minutes = text.split(":")
    return timedelta(hours=int(hours), minutes=int(minutes))


def free_query_label(number: int) -> str:
    days_ahead, opens, closes, filters = FREE_QUERIES[number % len(FREE_QUERIES)]
    extra = "".join(f"&{key}={value}" for key, value in filters.items())
    return f"open day +{days_ahead} {opens}-{closes}{extra}"


def catalogue_free_api(target: Target) -> Sample:
    """Anonymous, one keep-alive session; timed: GET /api/v1/instruments?available_from=…&available_to=…
    for the windows in turn, each answered 200 with at least one instrument."""
    base_url, dataset = target.base_url, target.dataset
    session = requests.Session()

    def sample(number: int) -> float:
        start, end, filters = _free_window(dataset, number)
        params = {"available_from": _iso(start), "available_to": _iso(end), **filters}
        started = time.perf_counter()
        response = session.get(f"{base_url}/api/v1/instruments", params=params, timeout=TIMEOUT)
        elapsed = time.perf_counter() - started
        label = free_query_label(number)
        _expect(response.status_code == 200, f"GET /api/v1/instruments ({label}) answered {response.status_code}: "
                                             f"{response.text[:200]}")
        _expect(bool(response.json().get("items")), f"GET /api/v1/instruments ({label}): no instrument free")
        return elapsed

    return sample


def catalogue_free_page(target: Target) -> Sample:
    """Anonymous, one keep-alive session; timed: GET /catalogue?free_from=…&free_to=… (the page's own
    form fields, Asia/Shanghai wall-clock time) for the windows in turn."""
    base_url, dataset = target.base_url, target.dataset
    session = requests.Session()

    def sample(number: int) -> float:
        start, end, filters = _free_window(dataset, number)
        params = {"free_from": _local_field(start), "free_to": _local_field(end), **filters}
        started = time.perf_counter()
        response = session.get(f"{base_url}/catalogue", params=params, timeout=TIMEOUT)
        elapsed = time.perf_counter() - started
        expect_results_page(response, f" ({free_query_label(number)})", none_found="no instrument free")
        return elapsed

    return sample


def _local_field(instant: datetime) -> str:
    return to_local(instant).strftime("%Y-%m-%dT%H:%M")


# --- a private iCalendar feed ----------------------------------------------------------------------

def ics_feed(target: Target) -> Sample:
    """Untimed: a feed token issued in-process (marketplace.booking.ics.issue_feed_token) for the member holding
    FEED_EVENTS bookings in the feed's year; timed: GET /calendar/<token>.ics, which must hold them all."""
    base_url, dataset = target.base_url, target.dataset
    token = _issue_feed_token(dataset)
    session = requests.Session()
    url = f"{base_url}/calendar/{token}.ics"

    def sample(_number: int) -> float:
        started = time.perf_counter()
        response = session.get(url, timeout=TIMEOUT)
        elapsed = time.perf_counter() - started
        _expect(response.status_code == 200, f"GET /calendar/….ics answered {response.status_code}")
        events = response.content.count(b"BEGIN:VEVENT")
        _expect(events >= FEED_EVENTS, f"the feed holds {events} events, not {FEED_EVENTS}")
        return elapsed

    return sample


def _issue_feed_token(dataset: Dataset) -> str:
    import sqlalchemy as sa

    from core.audit import Actor
    from core.db import unit_of_work, utcnow
    from core.extensions import db
    from core.models import User
    from marketplace.booking.ics import issue_feed_token

    app = bench_app(dataset.url)
    with app.app_context():
        try:
            with unit_of_work() as session:
                user = session.scalar(sa.select(User).where(User.email == dataset.bookings.feed_member))
                return issue_feed_token(session, user, actor=Actor.system("bench"), now=utcnow())
        finally:
            db.session.remove()
            db.engine.dispose()


BENCHMARKS: list[Benchmark] = [
    Benchmark("availability of a week (service)", 10, availability_service,
              "marketplace.booking.availability.compute_availability in-process (the instrument loaded untimed, a fresh "
              "session per sample) for one week of one of the 200 busiest instruments (about 2,000 bookings each, "
              f"20 a week), this week and the {WEEKS_AHEAD - 1} after it in turn",
              case=week_label),
    Benchmark("GET …/availability (a week)", 10, availability_api,
              "GET /api/v1/instruments/{id}/availability?start=…&end=… (anonymous) for the same weeks and "
              "instruments", case=week_label),
    Benchmark("GET /api/v1/instruments, free time", 60, catalogue_free_api,
              f"the API's catalogue search with available_from/available_to, {len(FREE_QUERIES)} windows in turn "
              "(open days ahead, mornings and afternoons, alone and with a keyword, a category, a sort, a second "
              "page); each must find an instrument", case=free_query_label),
    Benchmark("catalogue page, free time", 60, catalogue_free_page,
              "GET /catalogue?free_from=…&free_to=… (anonymous) for the same windows", case=free_query_label),
    Benchmark("private iCalendar feed", 300, ics_feed,
              f"GET /calendar/<token>.ics of the member with {FEED_EVENTS:,} bookings in the feed's year "
              "(each must be in it)", samples=50),
]


# --- bookings made through the API, many clients at once -------------------------------------------

SLOT_HOURS = ("08:30", "09:30", "10:30", "13:30", "14:30", "15:30", "16:30")  # one hour each, inside the open hours


def booking_clients(base_url: str, dataset: Dataset, clients: int) -> list[Request]:
    """Untimed: a token per client (POST /api/v1/tokens, a member of a verified enterprise each) and its
    own share of the free instruments (no fees: nothing to pay, so the gateway plays no part). Each
    request books the client's next one-hour slot: day by day from tomorrow, slot by slot, instrument
    by instrument, so no two requests ask for the same time of the same instrument."""
    members, free = dataset.bookings.members, dataset.bookings.free
    _expect(len(members) >= clients and len(free) >= clients, "too few members or free instruments for the clients")
    today = to_local(dataset.bookings.now).date()
    days = open_days(today + timedelta(days=1), today + timedelta(days=60))
    requests_made = []
    for number in range(clients):
        token = _token(base_url, members[number])
        requests_made.append(_booking_request(base_url, token, free[number::clients], days))
    return requests_made


def _token(base_url: str, email: str) -> str:
    response = requests.post(f"{base_url}/api/v1/tokens", json={"email": email, "password": BENCH_PASSWORD},
                             timeout=TIMEOUT)
    _expect(response.status_code == 201, f"{email}: POST /api/v1/tokens answered {response.status_code}")
    return response.json()["token"]


def _booking_request(base_url: str, token: str, instruments: list[int], days: list[date]) -> Request:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    slots = ((day, hour, instrument) for day in days for hour in SLOT_HOURS for instrument in instruments)
    numbers = count()

    def request() -> bool:
        day, hour, instrument = next(slots)
        start = local_midnight(day) + _clock(hour)
        body = {"instrument_id": instrument, "start": _iso(start), "end": _iso(start + timedelta(hours=1)),
                "purpose": f"基准预约 {next(numbers)}"}
        response = session.post(f"{base_url}/api/v1/bookings", json=body, timeout=TIMEOUT)
        if response.status_code != 201:
            raise BenchmarkFailed(f"POST /api/v1/bookings answered {response.status_code}: "
                                  f"{html.unescape(response.text[:300])}")
        return response.json().get("state") == "confirmed"

    return request


THROUGHPUTS: list[Throughput] = [
    Throughput("POST /api/v1/bookings, 16 clients at once", 100, booking_clients, databases=("postgresql",),
               workers=4, clients=16, requests_per_client=100,
               description="bookings made through the API by 16 clients in parallel (a token each, untimed), each "
                           "on instruments of its own with nothing to pay (confirmed at once, no gateway), one-hour "
                           "slots in turn; gunicorn with 4 workers (threads as gunicorn.conf.py has them) on "
                           "PostgreSQL; every answer must be 201 with the booking confirmed"),
]
