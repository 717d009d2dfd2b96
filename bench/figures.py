"""The figures `make bench` measures. Add one: write a `prepare(target) -> sample` function and
append a `Benchmark` to BENCHMARKS."""
from __future__ import annotations

import html
import re
import time
from itertools import count

import requests

from bench.dataset import BENCH_PASSWORD, Account
from bench.runner import Benchmark, Sample, Target

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


def log_in(session: requests.Session, base_url: str, account: Account) -> requests.Response:
    """GET /login for the CSRF token, then POST the form and follow the redirect."""
    page = session.get(f"{base_url}/login", timeout=TIMEOUT)
    _expect(page.status_code == 200, f"GET /login answered {page.status_code}")
    return session.post(f"{base_url}/login", timeout=TIMEOUT, data={
        "email": account.email, "password": BENCH_PASSWORD, "csrf_token": csrf_token(page.text)})


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


BENCHMARKS: list[Benchmark] = [
    Benchmark("log in + dashboard", 50, login_and_dashboard,
              "POST /login (fresh session, CSRF token fetched untimed) and the redirected GET /dashboard; "
              "includes one argon2 verification"),
    Benchmark("dashboard page (logged in)", 50, dashboard, "GET /dashboard with a logged-in session"),
    Benchmark("POST /api/v1/tokens", 150, api_token,
              "{email, password} → 201 {token}; includes one argon2 verification"),
]
