"""One writer per store: a Postgres session-level advisory lock keyed by store id.

A session lock (not a transaction lock) lets a task commit timeline events as it
goes, so the dashboard sees them live; if the worker dies, Postgres drops the
connection and the lock with it, which is what tells the reconciler the store is free.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection

_NAMESPACE = 0x5702E  # distinguishes our advisory locks from any other user's of the database


@contextlib.contextmanager
def store_lock(store_id: int) -> Iterator[bool]:
    """Try to take the store's lock without waiting; yields whether we got it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_NAMESPACE, store_id])
        got = bool(cursor.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_NAMESPACE, store_id])


def is_locked(store_id: int) -> bool:
    """Whether some session holds the store's lock right now (a live task is working on it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = %s AND objid = %s)",
            [_NAMESPACE, store_id],
        )
        return bool(cursor.fetchone()[0])
