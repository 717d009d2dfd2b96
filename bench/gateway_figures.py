"""The public pages while the payment gateway hangs: a gateway stub on loopback that accepts connections
and never answers, a gunicorn server of its own pointed at it, PAYING members paying their bookings by
card on the booking's payment page (each payment waits for the gateway until the app's timeout, and is
paid again as soon as it is answered), and meanwhile the public catalogue and instrument pages, each
sample taken while every payment is waiting at the gateway."""
from __future__ import annotations

import html
import logging
import random
import re
import socket
import socketserver
import statistics
import threading
import time
from datetime import timedelta

import requests

from bench.bookings import open_days
from bench.dataset import BENCH_PASSWORD, Account, Dataset
from bench.figures import CATALOGUE_QUERIES, TIMEOUT, BenchmarkFailed, _expect, catalogue_query_label, log_in
from bench.runner import Benchmark, Target
from bench.server import ROOT, AppServer
from core.clock import local_midnight, to_local

log = logging.getLogger(__name__)

PAYING = 8  # card payments waiting on the gateway at once
GATEWAY_TIMEOUT_SECONDS = 5  # the app's PAYMENT_READ_TIMEOUT_SECONDS for this figure: a few seconds
# How long a sample waits for every payment to be waiting at the gateway: a payment answered at its
# timeout is sent again at once, so this is reached within a timeout, or never (payments that wait
# for something else: a free worker, or the database)
GATHERING_SECONDS = 2 * GATEWAY_TIMEOUT_SECONDS + 5
BOOKING_DAYS_AHEAD = 80  # within the district's 90-day horizon, beyond nearly all of district-L's bookings


class HangingGateway(socketserver.ThreadingTCPServer):
    """A payment gateway that does not answer: on 127.0.0.1, it accepts every connection, reads what
    is sent and never writes back, until the caller gives up. `waiting` is how many callers it holds."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HoldConnection)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._lock = threading.Lock()
        self._held: set[socket.socket] = set()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._held)

    def hold(self, connection: socket.socket) -> None:
        with self._lock:
            self._held.add(connection)

    def release(self, connection: socket.socket) -> None:
        with self._lock:
            self._held.discard(connection)

    def __enter__(self) -> HangingGateway:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()
        with self._lock:
            held, self._held = list(self._held), set()
        for connection in held:  # ends the reads of the handler threads
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()
        self._thread.join(timeout=5)


class _HoldConnection(socketserver.BaseRequestHandler):
    server: HangingGateway

    def handle(self) -> None:
        self.server.hold(self.request)
        try:
            while self.request.recv(65536):  # until the caller closes its end
                pass
        except OSError:
            pass
        finally:
            self.server.release(self.request)


class _GatewayServer(AppServer):
    """The app with its payment gateway at the stub's address and a timeout of a few seconds."""

    def __init__(self, database_url: str, log_path, gateway_url: str) -> None:
        super().__init__(database_url, log_path)
        self.gateway_url = gateway_url

    def environment(self) -> dict[str, str]:
        return super().environment() | {"STRIPE_API_BASE": self.gateway_url,
                                        "PAYMENT_READ_TIMEOUT_SECONDS": str(GATEWAY_TIMEOUT_SECONDS)}


_CARD_CSRF = re.compile(r"<input\b[^>]*\bname=\"card-csrf_token\"[^>]*\bvalue=\"([^\"]*)\"")


class _Payer:
    """A member paying a booking by card on its payment page, again and again until stopped; every
    answer (the page that says the payment service is not reachable) is counted with its time."""

    def __init__(self, base_url: str, email: str, booking_id: int) -> None:
        self.session = requests.Session()
        self.url = f"{base_url}/bookings/{booking_id}/pay"
        response = log_in(self.session, base_url, Account(email, email))
        _expect(response.status_code == 200 and response.url.endswith("/dashboard"),
                f"{email}: could not log in ({response.status_code}, {response.url})")
        self.in_flight = False
        self.answers: list[tuple[int, float]] = []  # (status, seconds)
        self.error: str | None = None

    def pay_until(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                page = self.session.get(self.url, timeout=TIMEOUT)
                token = _CARD_CSRF.search(page.text)
                _expect(page.status_code == 200 and token is not None,
                        f"GET {self.url} answered {page.status_code} without the card form")
                form = {"card-csrf_token": html.unescape(token.group(1)), "card-payment_method": "card_bench",
                        "card-submit": "1"}
                started = time.perf_counter()
                self.in_flight = True
                try:
                    response = self.session.post(self.url, data=form, timeout=GATEWAY_TIMEOUT_SECONDS + TIMEOUT,
                                                 allow_redirects=False)
                finally:
                    self.in_flight = False
                self.answers.append((response.status_code, time.perf_counter() - started))
        except Exception as error:
            self.error = f"{type(error).__name__}: {error}"


class _PagesWhileGatewayHangs:
    """The sample function: the stub, the server and the payers are started by __init__ and stopped by
    close(), always."""

    def __init__(self, target: Target) -> None:
        self.stack: list = []
        self.stop = threading.Event()
        self.payers: list[_Payer] = []
        self.threads: list[threading.Thread] = []
        dataset = target.dataset
        try:
            self.gateway = HangingGateway().__enter__()
            self.stack.append(self.gateway)
            name = "sqlite" if dataset.url.startswith("sqlite") else "postgresql"
            self.server = _GatewayServer(dataset.url, ROOT / ".bench" / f"gunicorn-{name}-gateway.log",
                                         self.gateway.url).__enter__()
            self.stack.append(self.server)
            base_url = self.server.base_url
            members = dataset.bookings.members[-PAYING:]
            bookings = _payable_bookings(base_url, dataset, members)
            self.payers = [_Payer(base_url, email, booking_id) for email, booking_id in zip(members, bookings, strict=True)]
            self.threads = [threading.Thread(target=payer.pay_until, args=(self.stop,), daemon=True)
                            for payer in self.payers]
            for thread in self.threads:
                thread.start()
            self.base_url = base_url
            self.published = dataset.published
            self.draw = random.Random(13).choice
            self.pages = requests.Session()
            self.waiting_seen: list[int] = []
        except BaseException:
            self.close()
            raise

    def __call__(self, number: int) -> float:
        self._until_every_payment_waits()
        if number % 2 == 0:
            query = CATALOGUE_QUERIES[(number // 2) % len(CATALOGUE_QUERIES)]
            started = time.perf_counter()
            response = self.pages.get(f"{self.base_url}/catalogue", params=query, timeout=TIMEOUT)
            elapsed = time.perf_counter() - started
            _expect(response.status_code == 200 and 'data-testid="instrument-card"' in response.text,
                    f"GET /catalogue?{catalogue_query_label(number // 2)} answered {response.status_code} "
                    "without instruments")
        else:
            entry = self.draw(self.published)
            started = time.perf_counter()
            response = self.pages.get(f"{self.base_url}/instruments/{entry.id}", timeout=TIMEOUT)
            elapsed = time.perf_counter() - started
            _expect(response.status_code == 200 and html.escape(entry.name_zh) in response.text,
                    f"GET /instruments/{entry.id} answered {response.status_code} without the instrument")
        self.waiting_seen.append(self.gateway.waiting)
        return elapsed

    def _until_every_payment_waits(self) -> None:
        deadline, most = time.monotonic() + GATHERING_SECONDS, 0
        while (waiting := self.gateway.waiting) < PAYING:
            most = max(most, waiting)
            failed = [payer.error for payer in self.payers if payer.error]
            if failed:
                raise BenchmarkFailed(f"a payment failed: {failed[0]}")
            if time.monotonic() > deadline:
                raise BenchmarkFailed(
                    f"at most {most} of {PAYING} card payments waited at the gateway at once in "
                    f"{GATHERING_SECONDS} s: the others wait for something else (a free worker, the database)")
            time.sleep(0.005)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=GATEWAY_TIMEOUT_SECONDS + TIMEOUT + 5)
        answers = [answer for payer in self.payers for answer in payer.answers]
        if answers:
            statuses = sorted({status for status, _seconds in answers})
            log.info("gateway figure: %d payment answers (HTTP %s), each after %.1f s (median), %.1f s at most",
                     len(answers), ", ".join(map(str, statuses)), statistics.median(s for _, s in answers),
                     max(s for _, s in answers))
        for part in reversed(self.stack):  # the server, then the gateway stub
            part.__exit__(None, None, None)
        self.stack.clear()


def _payable_bookings(base_url: str, dataset: Dataset, members: list[str]) -> list[int]:
    """A booking with a share to pay for each member, made through the API (a token each): one hour
    of a priced catalogue instrument, BOOKING_DAYS_AHEAD days ahead; instruments that refuse (booked
    then, own staff only) are passed over."""
    _expect(len(members) >= PAYING, f"fewer than {PAYING} members who may book")
    today = to_local(dataset.bookings.now).date()
    day = open_days(today + timedelta(days=BOOKING_DAYS_AHEAD), today + timedelta(days=BOOKING_DAYS_AHEAD + 10))[0]
    start = local_midnight(day) + timedelta(hours=9)
    unpriced = set(dataset.bookings.hot) | set(dataset.bookings.free)
    candidates = iter(entry.id for entry in dataset.published if entry.id not in unpriced)
    made = []
    for email in members:
        token = requests.post(f"{base_url}/api/v1/tokens", json={"email": email, "password": BENCH_PASSWORD},
                              timeout=TIMEOUT).json()["token"]
        for _attempt in range(50):
            response = requests.post(f"{base_url}/api/v1/bookings", timeout=TIMEOUT,
                                     headers={"Authorization": f"Bearer {token}"},
                                     json={"instrument_id": next(candidates), "start": start.isoformat(),
                                           "end": (start + timedelta(hours=1)).isoformat(), "purpose": "基准支付"})
            if response.status_code == 201 and response.json()["payable_fen"] > 0:
                made.append(response.json()["id"])
                break
        else:
            raise BenchmarkFailed(f"{email}: no payable booking in 50 tries; the last answer: "
                                  f"{response.status_code} {response.text[:200]}")
    return made


def pages_while_gateway_hangs(target: Target) -> _PagesWhileGatewayHangs:
    return _PagesWhileGatewayHangs(target)


def page_label(number: int) -> str:
    return "catalogue search" if number % 2 == 0 else "instrument page"


BENCHMARKS: list[Benchmark] = [
    Benchmark(f"public pages, {PAYING} card payments hung", 100, pages_while_gateway_hangs,
              f"GET /catalogue (the catalogue search's queries) and GET /instruments/<id> in turn (anonymous) on a "
              f"gunicorn server of its own (gunicorn.conf.py, 2 workers) whose payment gateway is a stub on loopback "
              f"that accepts connections and never answers, with the app's gateway timeout at "
              f"{GATEWAY_TIMEOUT_SECONDS} s; meanwhile {PAYING} members pay a booking by card on its payment page, "
              "again as soon as the page answers; each sample is taken while all of them wait at the gateway",
              case=page_label, samples=100),
]
