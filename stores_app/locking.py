"""One writer per store: a Postgres session-level advisory lock keyed by store id, owned by a live worker.

A session lock (not a transaction lock) lets a task commit timeline events as it
goes, so the dashboard sees them live; if the worker dies, Postgres drops the
connection and the lock with it, which is what tells the reconciler the store is free.

A lost node is different: its connection can stay half-open, and the lock held, for as
long as TCP takes to notice (the connection asks the server to probe it, see
settings.DATABASES). So every worker process also beats a heartbeat row
(`WorkerHeartbeat`, with the Postgres backend its tasks use) from a thread: a lock whose
holder has stopped beating for WORKER_LOST_SECONDS is taken over by ending the holder's
backend. The same heartbeat tells a live helm operation from a lost one (provisioning).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError, connection, connections
from django.utils import timezone

from .models import WorkerHeartbeat

log = logging.getLogger(__name__)

_NAMESPACE = 0x5702E  # distinguishes our advisory locks from any other user's of the database
_HOLDER_SQL = "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s AND objid = %s LIMIT 1"


def process_name() -> str:
    """This worker process, as owners are recorded: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(name: str) -> bool:
    """Whether the process `name` still beats. A process on this host that no longer exists is dead at once."""
    if not name:
        return False
    host, _, pid = name.rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not _pid_running(int(pid)):
        return False
    horizon = timezone.now() - dt.timedelta(seconds=settings.WORKER_LOST_SECONDS)
    return WorkerHeartbeat.objects.filter(name=name, beat_at__gte=horizon).exists()


def _pid_running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie has exited
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False


# --- the heartbeat ------------------------------------------------------------------------------

_heartbeat_pid: int | None = None
_registered: tuple[int, int] | None = None  # (os pid, backend pid) last written for the task connection


def start_heartbeat() -> None:
    """Start this process's heartbeat thread (once per process; a forked child starts its own)."""
    global _heartbeat_pid
    if _heartbeat_pid == os.getpid():
        return
    _heartbeat_pid = os.getpid()
    threading.Thread(target=_beat_forever, name="worker-heartbeat", daemon=True).start()


def _beat_forever() -> None:
    name = process_name()
    while True:
        try:
            WorkerHeartbeat.objects.update_or_create(name=name, defaults={"beat_at": timezone.now()})
        except DatabaseError:
            # Postgres is away: nobody can judge us meanwhile. Reconnect on the next beat.
            connections.close_all()
        time.sleep(settings.WORKER_HEARTBEAT_SECONDS)


def _register_backend() -> None:
    """Record which Postgres backend this process's locks live on, before taking any (so a takeover
    never mistakes a fresh holder for a lost one)."""
    global _registered
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    if _registered != (os.getpid(), backend):
        WorkerHeartbeat.objects.update_or_create(
            name=process_name(), defaults={"beat_at": timezone.now(), "backend_pid": backend}
        )
        _registered = (os.getpid(), backend)


# --- the lock -------------------------------------------------------------------------------------


def _try_lock(store_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_NAMESPACE, store_id])
        return bool(cursor.fetchone()[0])


@contextlib.contextmanager
def store_lock(store_id: int) -> Iterator[bool]:
    """Try to take the store's lock without waiting (taking it over from a lost holder); yields whether we got it."""
    _register_backend()
    got = _try_lock(store_id)
    if not got and take_over_lost_lock(store_id):
        got = _try_lock(store_id)
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_NAMESPACE, store_id])


def _holder(store_id: int) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(_HOLDER_SQL, [_NAMESPACE, store_id])
        row = cursor.fetchone()
    return row[0] if row else None


def holder_lost(store_id: int) -> bool:
    """Whether the store's lock is held by a worker process that stopped beating (a lost node)."""
    backend = _holder(store_id)
    if backend is None:
        return False
    newest = WorkerHeartbeat.objects.filter(backend_pid=backend).order_by("-beat_at").first()
    if newest is None:
        return False  # not a worker's connection (an operator's session): leave it alone
    return timezone.now() - newest.beat_at > dt.timedelta(seconds=settings.WORKER_LOST_SECONDS)


def take_over_lost_lock(store_id: int) -> bool:
    """End the backend of a lost lock holder; True when the lock is then free."""
    if not holder_lost(store_id):
        return False
    backend = _holder(store_id)
    log.warning("taking over the lock of a lost worker", extra={"store_id": store_id, "backend_pid": backend})
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
    deadline = time.monotonic() + 5
    while _holder(store_id) == backend and time.monotonic() < deadline:
        time.sleep(0.1)
    return _holder(store_id) is None


def is_locked(store_id: int) -> bool:
    """Whether some session holds the store's lock right now (a live task is working on it)."""
    return _holder(store_id) is not None


# --- rollouts -------------------------------------------------------------------------------------

_ROLLOUT_NAMESPACE = 0x5702F  # a rollout's lock, apart from the stores' (same id space otherwise)


@contextlib.contextmanager
def rollout_lock(rollout_id: int) -> Iterator[bool]:
    """Try to take a rollout's lock without waiting; yields whether we got it. Its holder works for a moment
    (advancing a rollout starts upgrades, it waits for none), and a lost holder's session ends with it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_ROLLOUT_NAMESPACE, rollout_id])
        got = bool(cursor.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_ROLLOUT_NAMESPACE, rollout_id])
