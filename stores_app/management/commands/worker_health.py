"""The worker's Kubernetes probe: exit 0 while the Celery worker is alive and not stuck.

Stuck is either of two things. The heartbeat file is stale: the worker's main process stopped
running its timers. Or a command a task started (helm) has run longer than
WORKER_STUCK_COMMAND_SECONDS: helm gets its own --timeout, so one that outlives it by a margin is
hung, and holds a worker slot while the heartbeat keeps ticking.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil
from django.conf import settings
from django.core.management.base import BaseCommand


def heartbeat_problem(path: Path, max_age: float) -> str | None:
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return f"No heartbeat at {path}: the worker has not started."
    if age > max_age:
        return f"Heartbeat is {age:.0f}s old (limit {max_age:.0f}s): the worker is stuck."
    return None


def _commands(worker: psutil.Process) -> list[psutil.Process]:
    """Processes the worker's tasks started: below its pool processes, or (orphaned, in a container whose
    PID 1 is the worker) its direct children that run another program than the worker itself."""
    found = []
    exe = worker.exe()
    for child in worker.children():
        try:
            if child.exe() != exe:
                found.append(child)
            found.extend(child.children(recursive=True))
        except psutil.NoSuchProcess:
            continue  # finished while we looked
    return found


def stuck_commands(worker_pid: int, limit: float) -> list[str]:
    """A line for each command of the worker that has run longer than `limit` seconds."""
    try:
        worker = psutil.Process(worker_pid)
        commands = _commands(worker)
    except psutil.NoSuchProcess:
        return []  # no worker to judge: the heartbeat check speaks for it
    now = time.time()
    stuck = []
    for proc in commands:
        try:
            age = now - proc.create_time()
            if age > limit:
                # helm's argv carries no secrets (values travel on stdin); the first words name the call.
                stuck.append(f"pid {proc.pid} `{' '.join(proc.cmdline()[:4])}` has run {age:.0f}s")
        except psutil.NoSuchProcess:
            continue
    return stuck


class Command(BaseCommand):
    help = "Check that this pod's Celery worker is alive (fresh heartbeat) and not stuck (no hung helm)."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--max-age", type=float, default=30.0, help="Heartbeat age limit in seconds (30).")
        parser.add_argument(
            "--worker-pid",
            type=int,
            default=None,
            help="The worker's main process, whose commands are checked (in its container: 1). Unset: not checked.",
        )
        parser.add_argument(
            "--max-command-seconds",
            type=float,
            default=None,
            help="How long a task's command may run (default: WORKER_STUCK_COMMAND_SECONDS).",
        )

    def handle(self, *args, max_age, worker_pid, max_command_seconds, **options):
        limit = max_command_seconds if max_command_seconds is not None else settings.WORKER_STUCK_COMMAND_SECONDS
        problems = []
        heartbeat = heartbeat_problem(Path(settings.WORKER_HEARTBEAT_FILE), max_age)
        if heartbeat:
            problems.append(heartbeat)
        for line in stuck_commands(worker_pid, limit) if worker_pid is not None else []:
            problems.append(f"A task's command is hung: {line} (limit {limit:.0f}s).")
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            sys.exit(1)
        self.stdout.write("Worker alive and no command hung.")
