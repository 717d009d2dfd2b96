"""A real Kequip server for the benchmarks: gunicorn with gunicorn.conf.py, as `make run` starts it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import requests

from testsupport.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


class ServerFailed(RuntimeError):
    pass


def _processes() -> Iterator[tuple[int, int, int, float]]:
    """(pid, parent pid, process group, CPU seconds used: user + system) of every process in /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        yield int(entry.name), int(fields[1]), int(fields[2]), (int(fields[11]) + int(fields[12])) / ticks


def process_group_cpu(group: int) -> float:
    """CPU seconds the live processes of a process group have used (gunicorn's master and workers)."""
    return sum(cpu for _pid, _parent, pgrp, cpu in _processes() if pgrp == group)


def process_tree_cpu(root: int) -> float:
    """CPU seconds a process and its children have used (a postmaster and its backends)."""
    return sum(cpu for pid, parent, _pgrp, cpu in _processes() if root in (pid, parent))


class AppServer:
    """`with AppServer(url, log) as server:` serves the database at `url` on a free loopback port,
    and always terminates the gunicorn process (and its workers) on the way out."""

    def __init__(self, database_url: str, log_path: Path, *, workers: int = 2, startup_timeout: float = 60.0) -> None:
        self.database_url = database_url
        self.log_path = log_path
        self.workers = workers
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen | None = None

    def environment(self) -> dict[str, str]:
        instance = ROOT / ".bench" / "instance"
        instance.mkdir(parents=True, exist_ok=True)
        return os.environ | {
            "DATABASE_URL": self.database_url,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "SCHEDULER_ENABLED": "0",
            "SECRET_KEY": "bench",
            "KEQUIP_INSTANCE_DIR": str(instance),
            "RATELIMIT_STORAGE_URI": "memory://",  # the login failure limit must not interfere
            "WEB_CONCURRENCY": str(self.workers),
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def start(self) -> AppServer:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [str(gunicorn), "-c", "gunicorn.conf.py", "core.app:create_app()"],
                cwd=ROOT, env=self.environment(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)  # its own process group: the workers go with it
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise ServerFailed(f"gunicorn exited with {self._process.returncode}; see {self.log_path}")
            try:
                if requests.get(f"{self.base_url}/login", timeout=10).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or a worker still booting
                pass
            time.sleep(0.2)
        raise ServerFailed(f"gunicorn did not answer within {self.startup_timeout:.0f} s; see {self.log_path}")

    def cpu_seconds(self) -> float:
        """CPU seconds gunicorn (master and workers) has used so far."""
        return process_group_cpu(self._process.pid) if self._process is not None else 0.0

    def worker_memory(self) -> list[float]:
        """The resident memory (VmRSS, MiB) of each gunicorn worker, from /proc."""
        if self._process is None:
            return []
        found = []
        for pid, parent, _pgrp, _cpu in _processes():
            if parent == self._process.pid:
                try:
                    status = (Path("/proc") / str(pid) / "status").read_text()
                except OSError:  # ended meanwhile
                    continue
                found += [int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")]
        return found

    def exit_status(self) -> str | None:
        """None while gunicorn runs; else how it ended (a negative code is the signal that stopped it)."""
        if self._process is None or self._process.poll() is None:
            return None
        code = self._process.returncode
        if code < 0:
            return f"gunicorn was stopped by signal {signal.Signals(-code).name}, not by the harness"
        return f"gunicorn exited with {code}; see {self.log_path}"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # SIGTERM: gunicorn stops its workers gracefully
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group we created for this process alone
            process.wait(timeout=10)

    def __enter__(self) -> AppServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
