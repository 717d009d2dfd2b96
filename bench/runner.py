"""What a benchmark is, and how one is measured: sequential samples after warm-ups, bounded in
count and in time, summarised as p50/p95; and what a one-off figure is (a job timed once in-process,
such as making a catalogue release), held to its target run by run."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

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
    function that takes one sample: it does its own untimed setup and returns only the timed seconds."""

    name: str
    target_ms: float
    prepare: Callable[[Target], Sample]
    description: str = ""
    # sample number → what that sample asked for (e.g. the query of a rotating search): the report
    # then shows the figures of each, so a slow case can be found
    case: Callable[[int], str] | None = None


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

    def by_case(self) -> dict[str, list[float]]:
        """Milliseconds per case, cases in the order they were first sampled."""
        found: dict[str, list[float]] = {}
        for case, ms in zip(self.cases, self.samples_ms):
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
    try:
        sample = benchmark.prepare(target)
        for i in range(settings.warmups):
            if time.monotonic() > deadline:
                break
            sample(i)
        for i in range(settings.warmups, settings.warmups + settings.samples):
            if time.monotonic() > deadline:
                break
            samples.append(sample(i) * 1000)
            if benchmark.case is not None:
                cases.append(benchmark.case(i))
    except Exception as error:  # noqa: BLE001 - reported in the table, the other figures still run
        return Result(benchmark, tuple(samples), error=f"{type(error).__name__}: {error}", cases=tuple(cases))
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
    except Exception as error:  # noqa: BLE001 - reported in the table, the other figures still run
        return OneOffResult(one_off, (), error=f"{type(error).__name__}: {error}")
