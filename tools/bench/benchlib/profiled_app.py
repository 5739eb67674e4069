"""The orchestrator's Celery app with every task run under pyinstrument (for `bench.py --profile`).

Start a worker with `celery -A tools.bench.benchlib.profiled_app worker` (the repository on PYTHONPATH) and
BENCH_PROFILE_DIR set. Each pool process profiles each task it runs (wall clock, so time spent
waiting for helm or the Kubernetes API shows), combines the sessions per task name, and saves them to
BENCH_PROFILE_DIR/<task>.<pid>.pyisession after every task. `report.render_profiles` merges them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery.signals import task_postrun, task_prerun
from pyinstrument import Profiler
from pyinstrument.session import Session

from orchestrator.celery import app

__all__ = ["app"]

_DIR = Path(os.environ.get("BENCH_PROFILE_DIR", "/tmp/bench-profile"))  # noqa: S108
_running: dict[str, Profiler] = {}
_sessions: dict[str, Session] = {}
_counts: dict[str, int] = {}
_busy: dict[str, float] = {}


@task_prerun.connect
def _start(task_id=None, task=None, **_kwargs) -> None:
    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    _running[task_id] = profiler


@task_postrun.connect
def _stop(task_id=None, task=None, **_kwargs) -> None:
    profiler = _running.pop(task_id, None)
    if profiler is None:
        return
    session = profiler.stop()
    name = task.name.rsplit(".", 1)[-1]
    previous = _sessions.get(name)
    _sessions[name] = session if previous is None else Session.combine(previous, session)
    _counts[name] = _counts.get(name, 0) + 1
    _busy[name] = _busy.get(name, 0.0) + session.duration
    _DIR.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    _sessions[name].save(str(_DIR / f"{name}.{os.getpid()}.pyisession"))
    (_DIR / f"{name}.{os.getpid()}.count").write_text(f"{_counts[name]} {_busy[name]:.3f}\n")
    _busy["_saving"] = _busy.get("_saving", 0.0) + time.perf_counter() - started
