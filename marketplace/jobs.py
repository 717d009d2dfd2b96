"""The marketplace's jobs (STYLE 2.11)."""
from __future__ import annotations

from core.scheduler import Job

JOBS: list[Job] = []
