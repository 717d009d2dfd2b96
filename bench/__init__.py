"""Kequip's benchmark harness, run by `make bench` (`python -m bench`).

For each database it builds the "district-L" data set with bulk inserts (`bench.dataset`), serves
it with a real gunicorn process (`bench.server`), measures every figure in `bench.figures.BENCHMARKS`
over loopback HTTP (`bench.runner`), and writes `docs/benchmarks.md` (`bench.report`).
A new figure is one more `Benchmark` entry in `bench/figures.py`."""
