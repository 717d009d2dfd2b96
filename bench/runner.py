"""What a benchmark is, and how one is measured: sequential samples after warm-ups, bounded in
count and in time, summarised as p50/p95."""
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
    except Exception as error:  # noqa: BLE001 - reported in the table, the other figures still run
        return Result(benchmark, tuple(samples), error=f"{type(error).__name__}: {error}")
    return Result(benchmark, tuple(samples))
