"""What a benchmark is, and how one is measured: sequential samples after warm-ups, bounded in
count and in time, summarised as p50/p95; what a one-off figure is (a job timed once in-process,
such as making a catalogue release), held to its target run by run; and what a throughput figure is
(many clients at once against a server of its own, counted per second)."""
from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.dataset import Dataset

Sample = Callable[[int], float]  # sample number → seconds measured (setup outside the timed part)


@dataclass(frozen=True)
class Target:
    """What a benchmark runs against: a serving Kequip and the data set behind it."""

    base_url: str
    dataset: Dataset


@dataclass(frozen=True)
class Benchmark:
    """One figure of docs/benchmarks.md. `prepare` runs once, untimed (e.g. logs in), and returns the
    function that takes one sample: it does its own untimed setup and returns only the timed seconds.
    A sample function with a `close()` (an in-process figure holding an app context) is closed after
    the last sample."""

    name: str
    target_ms: float
    prepare: Callable[[Target], Sample]
    description: str = ""
    # sample number → what that sample asked for (e.g. the query of a rotating search): the report
    # then shows the figures of each, so a slow case can be found
    case: Callable[[int], str] | None = None
    samples: int | None = None  # fewer samples than Settings.samples, for a slow figure
    memory: bool = False  # report the server's workers' resident memory after the figure


@dataclass(frozen=True)
class Settings:
    samples: int = 200
    warmups: int = 20
    time_budget: float = 240.0  # seconds per benchmark, warm-ups included


@dataclass(frozen=True)
class Result:
    benchmark: Benchmark
    samples_ms: tuple[float, ...]
    error: str | None = None
    cases: tuple[str, ...] = ()  # the case of each sample, when the benchmark has cases
    note: str = ""  # what else was measured with it (e.g. the workers' memory after it)

    def by_case(self) -> dict[str, list[float]]:
        """Milliseconds per case, cases in the order they were first sampled."""
        found: dict[str, list[float]] = {}
        for case, ms in zip(self.cases, self.samples_ms, strict=True):
            found.setdefault(case, []).append(ms)
        return found

    @property
    def count(self) -> int:
        return len(self.samples_ms)

    def percentile(self, p: int) -> float | None:
        if not self.samples_ms:
            return None
        if len(self.samples_ms) == 1:
            return self.samples_ms[0]
        return statistics.quantiles(self.samples_ms, n=100, method="inclusive")[p - 1]

    @property
    def p50(self) -> float | None:
        return self.percentile(50)

    @property
    def p95(self) -> float | None:
        return self.percentile(95)

    @property
    def met(self) -> bool:
        return self.error is None and self.p95 is not None and self.p95 <= self.benchmark.target_ms


def run(benchmark: Benchmark, target: Target, settings: Settings) -> Result:
    """Warm up, then take up to `settings.samples` samples one after the other; an error stops the
    benchmark and is reported with the samples taken so far."""
    deadline = time.monotonic() + settings.time_budget
    samples: list[float] = []
    cases: list[str] = []
    count = min(settings.samples, benchmark.samples or settings.samples)
    sample = None
    try:
        sample = benchmark.prepare(target)
        for i in range(settings.warmups):
            if time.monotonic() > deadline:
                break
            sample(i)
        for i in range(settings.warmups, settings.warmups + count):
            if time.monotonic() > deadline:
                break
            samples.append(sample(i) * 1000)
            if benchmark.case is not None:
                cases.append(benchmark.case(i))
    except Exception as error:
        return Result(benchmark, tuple(samples), error=f"{type(error).__name__}: {error}", cases=tuple(cases))
    finally:
        if hasattr(sample, "close"):
            sample.close()
    return Result(benchmark, tuple(samples), cases=tuple(cases))


# --- one-off figures ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Timing:
    """One timed run of a one-off figure: what ran (e.g. "first release: 17,943 instruments"), and
    how many seconds the timed part took."""

    label: str
    seconds: float


@dataclass(frozen=True)
class OneOff:
    """A figure measured once rather than sampled: `measure` works in-process on the benchmark
    database (untimed setup of its own) and returns one Timing per run it makes; every run must reach
    the target. For jobs too long and too heavy to repeat two hundred times (a release, an import)."""

    name: str
    target_seconds: float
    measure: Callable[[Dataset], list[Timing]]
    description: str = ""


@dataclass(frozen=True)
class OneOffResult:
    one_off: OneOff
    timings: tuple[Timing, ...]
    error: str | None = None

    @property
    def met(self) -> bool:
        return (self.error is None and bool(self.timings)
                and all(timing.seconds <= self.one_off.target_seconds for timing in self.timings))


def measure_once(one_off: OneOff, dataset: Dataset) -> OneOffResult:
    """Run a one-off figure; an error is reported with it, the other figures still run."""
    try:
        return OneOffResult(one_off, tuple(one_off.measure(dataset)))
    except Exception as error:
        return OneOffResult(one_off, (), error=f"{type(error).__name__}: {error}")


# --- throughput figures ---------------------------------------------------------------------------

Request = Callable[[], bool]  # one request of a client: True when it was answered as expected


@dataclass(frozen=True)
class Throughput:
    """Requests per second from many clients at once, against a server of its own (`workers` gunicorn
    workers) on the listed databases. `prepare(base_url, dataset, clients)` runs untimed (accounts,
    tokens, the work of each client) and returns one function per client that makes that client's next
    request; every client makes `requests_per_client` requests after `warmups` untimed ones, all
    clients starting together. Met when the rate reaches `target_per_second` with no error."""

    name: str
    target_per_second: float
    prepare: Callable[[str, Dataset, int], list[Request]]
    databases: tuple[str, ...]
    workers: int = 4
    clients: int = 16
    requests_per_client: int = 100
    warmups: int = 5
    description: str = ""
    # after the last answer: checks what the requests left in the database (e.g. nothing lost) and says
    # what it found; a BenchmarkFailed is the figure's error
    verify: Callable[[Dataset, list[Request]], str] | None = None


@dataclass(frozen=True)
class ThroughputResult:
    figure: Throughput
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: tuple[float, ...] = ()
    error: str | None = None
    # CPU milliseconds per timed request, by who spent them ("app": gunicorn, "database", "clients")
    cpu_ms: dict[str, float] = field(default_factory=dict)
    note: str = ""  # what the figure's verify found

    def capacity(self, cpus: int) -> float | None:
        """Requests per second these CPUs could serve at most, were they spent on nothing else."""
        spent = sum(self.cpu_ms.values())
        return cpus * 1000 / spent if spent else None

    @property
    def per_second(self) -> float | None:
        return self.requests / self.seconds if self.seconds else None

    def latency(self, p: int) -> float | None:
        if len(self.latencies_ms) < 2:
            return None
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[p - 1]

    @property
    def met(self) -> bool:
        return (self.error is None and self.errors == 0 and self.per_second is not None
                and self.per_second >= self.figure.target_per_second)


def measure_throughput(figure: Throughput, base_url: str, dataset: Dataset, *,
                       cpu: dict[str, Callable[[], float]] | None = None) -> ThroughputResult:
    """Each client in a thread of its own: warm-ups, then, all together from one barrier, its timed
    requests; the rate is all timed requests over the time from the barrier to the last answer. `cpu`:
    probes of CPU seconds used so far (the server's processes, the database's, this process), read at
    the barrier and after the last answer, so the CPU each request cost shows whatever else the machine
    was doing."""
    try:
        clients = figure.prepare(base_url, dataset, figure.clients)
    except Exception as error:
        return ThroughputResult(figure, error=f"{type(error).__name__}: {error}")
    barrier = threading.Barrier(len(clients) + 1)
    latencies: list[list[float]] = [[] for _ in clients]
    errors = [0] * len(clients)
    failures: list[str] = []

    def client(number: int) -> None:
        request = clients[number]
        try:
            for _ in range(figure.warmups):
                request()
        except Exception as error:
            failures.append(f"{type(error).__name__}: {error}")
        barrier.wait()
        for _ in range(figure.requests_per_client):
            started = time.perf_counter()
            try:
                answered = request()
            except Exception as error:
                answered = False
                failures.append(f"{type(error).__name__}: {error}")
            latencies[number].append((time.perf_counter() - started) * 1000)
            errors[number] += not answered

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(len(clients))]
    for thread in threads:
        thread.start()
    probes = cpu or {}
    barrier.wait()
    started, cpu_before = time.perf_counter(), {name: probe() for name, probe in probes.items()}
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    note = ""
    if figure.verify is not None:
        try:
            note = figure.verify(dataset, clients)
        except Exception as error:
            failures.append(f"{type(error).__name__}: {error}")
    every = tuple(ms for each in latencies for ms in each)
    cpu_ms = {name: (probe() - cpu_before[name]) * 1000 / len(every) for name, probe in probes.items()} if every else {}
    return ThroughputResult(figure, requests=len(every), errors=sum(errors), seconds=seconds, latencies_ms=every,
                            error=failures[0] if failures else None, cpu_ms=cpu_ms, note=note)
