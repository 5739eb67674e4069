"""The orchestrator's side: stores created and deleted through the REST API by several users at once.

Request times are taken by the client just before each HTTP request; ready and deleted times come
from the database (`ready_at`, `deleted_at`, set by the worker), on the same machine's clock. A
sampler thread reads the stores' states from the database every 0.25 s: it counts how many are
`provisioning` at once (in-flight capacity) and releases the client's in-flight slot of a store
that finished, when the run limits parallelism.

A provisioning may have a checkpoint (`checkpoint_at` stores): once that many are ready the sampler starts
`on_checkpoint` in a thread of its own (measurements with that many live stores) while the rest keep
coming up. (Holding the rest back instead would drain the pipeline and cost the orchestrator's column
the time to fill it again, which the other columns do not pay.)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests

from .fleet import timeline
from .stats import max_overlap, summary

TERMINAL_UP = {"ready", "failed"}


@dataclass
class StoreRun:
    index: int
    name: str
    engine: str
    user: int
    store_id: int | None = None
    requested: float = 0.0  # client clock, before the request
    accepted: float = 0.0  # client clock, after the response
    http_status: int = 0
    error: str = ""
    status: str = ""
    message: str = ""
    created_at: float | None = None
    provisioning_started_at: float | None = None
    ready_at: float | None = None
    delete_requested: float = 0.0
    delete_status: int = 0
    deleted_at: float | None = None
    finished: bool = False  # reached a terminal state in the current phase
    events: dict[str, float] = field(default_factory=dict)


def _ts(value) -> float | None:
    return value.timestamp() if value is not None else None


class Sampler(threading.Thread):
    """Reads the run's stores from the database until every one is in a terminal state."""

    def __init__(
        self,
        stores: list[StoreRun],
        phase: str,
        slots: threading.BoundedSemaphore,
        timeout: float,
        checkpoint_at: int = 0,
        on_checkpoint=None,
    ):
        super().__init__(name="db-sampler", daemon=True)
        self.stores = stores
        self.checkpoint_at = checkpoint_at
        self.checkpoint = None
        if checkpoint_at and on_checkpoint is not None:
            self.checkpoint = threading.Thread(target=on_checkpoint, name="checkpoint", daemon=True)
        self.phase = phase  # "up" (provisioning) or "down" (teardown)
        self.slots = slots
        self.deadline = time.monotonic() + timeout
        self.samples: list[dict] = []
        self.released: set[int] = set()
        self.all_submitted = threading.Event()
        self.done = threading.Event()
        self.timed_out = False

    def run(self) -> None:
        from django.db import connection

        from stores_app.models import Store

        t0 = time.time()
        try:
            while True:
                by_id = {s.store_id: s for s in self.stores if s.store_id is not None}
                counts: dict[str, int] = {}
                rows = Store.objects.filter(pk__in=list(by_id)).values_list("id", "status", "updated_at")
                for store_id, status, updated_at in rows:
                    counts[status] = counts.get(status, 0) + 1
                    run = by_id[store_id]
                    run.status = status
                    run.finished = run.finished or self._terminal(run, status, updated_at.timestamp())
                    if run.finished and store_id not in self.released:
                        self.released.add(store_id)
                        self.slots.release()
                self.samples.append({"t": round(time.time() - t0, 2), **counts})
                started = self.checkpoint is None or self.checkpoint.ident is not None
                if not started and counts.get("ready", 0) >= self.checkpoint_at:
                    self.checkpoint.start()
                finished = sum(1 for s in self.stores if s.finished or s.error)
                if self.all_submitted.is_set() and finished == len(self.stores):
                    break
                if time.monotonic() > self.deadline:
                    self.timed_out = True
                    break
                time.sleep(0.25)
        finally:
            connection.close()
            self.done.set()

    def _terminal(self, run: StoreRun, status: str, updated_at: float) -> bool:
        if self.phase == "up":
            return status in TERMINAL_UP
        # A store that had failed to provision is "failed" before its DELETE too: count only a new failure.
        if status == "deleted":
            return True
        return status == "failed" and run.delete_status == 202 and updated_at >= run.delete_requested

    def max_count(self, status: str) -> int:
        return max((sample.get(status, 0) for sample in self.samples), default=0)


def _client(token: str) -> requests.Session:
    """One API user's HTTP client. A connection per request: a client that waits seconds for a slot between
    requests would otherwise send some on a kept-alive connection gunicorn has just closed (its keep-alive
    is 2 s), and lose them to "connection reset" — a lost DELETE left a store behind in a 200-store run."""
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    session.headers["Connection"] = "close"
    return session


def _user_threads(stores: list[StoreRun], tokens: list[str], action) -> list[threading.Thread]:
    threads = []
    for user_index, token in enumerate(tokens):
        mine = [s for s in stores if s.user == user_index]
        thread = threading.Thread(target=action, args=(token, mine), name=f"user-{user_index}", daemon=True)
        threads.append(thread)
    return threads


def provision(
    web_url: str,
    tokens: list[str],
    stores: list[StoreRun],
    parallelism: int,
    timeout: float,
    checkpoint_at: int = 0,
    on_checkpoint=None,
) -> dict:
    """Create every store through POST /api/stores/ and wait until all are ready or failed; with
    `checkpoint_at`, run `on_checkpoint()` beside them once that many are ready."""
    slots = threading.BoundedSemaphore(parallelism)
    sampler = Sampler(stores, "up", slots, timeout, checkpoint_at=checkpoint_at, on_checkpoint=on_checkpoint)

    def create_all(token: str, mine: list[StoreRun]) -> None:
        session = _client(token)
        for run in mine:
            slots.acquire()
            run.requested = time.time()
            try:
                response = session.post(
                    f"{web_url}/api/stores/", json={"name": run.name, "engine": run.engine}, timeout=60
                )
                run.accepted = time.time()
                run.http_status = response.status_code
                if response.status_code == 202:
                    run.store_id = response.json()["id"]
                else:
                    run.error = f"HTTP {response.status_code}: {response.text[:200]}"
            except requests.RequestException as exc:
                run.error = f"{type(exc).__name__}: {exc}"
            if run.error:
                slots.release()

    t0 = _run_users(sampler, stores, tokens, create_all)
    if sampler.checkpoint is not None and sampler.checkpoint.ident is not None:
        sampler.checkpoint.join()
    return _provision_report(stores, sampler, t0)


def _run_users(sampler, runs: list[StoreRun], tokens: list[str], work) -> float:
    """Run `work` for every user thread while the sampler watches; return the start time."""
    t0 = time.time()
    sampler.start()
    threads = _user_threads(runs, tokens, work)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sampler.all_submitted.set()
    sampler.join()
    _load_details(runs)
    return t0


def teardown(web_url: str, tokens: list[str], stores: list[StoreRun], parallelism: int, timeout: float) -> dict:
    """Delete every store through DELETE /api/stores/{id}/ and wait until all are deleted."""
    targets = [s for s in stores if s.store_id is not None]
    slots = threading.BoundedSemaphore(parallelism)
    sampler = Sampler(targets, "down", slots, timeout)
    for run in targets:
        run.finished = False

    def delete_all(token: str, mine: list[StoreRun]) -> None:
        session = _client(token)
        for run in mine:
            slots.acquire()
            run.delete_requested = time.time()
            try:
                response = session.delete(f"{web_url}/api/stores/{run.store_id}/", timeout=60)
                run.delete_status = response.status_code
                if response.status_code != 202:
                    run.error = f"DELETE HTTP {response.status_code}: {response.text[:200]}"
            except requests.RequestException as exc:
                run.error = f"{type(exc).__name__}: {exc}"
            if run.error:
                slots.release()

    t0 = _run_users(sampler, targets, tokens, delete_all)
    done = [s for s in targets if s.deleted_at is not None]
    durations = [s.deleted_at - s.delete_requested for s in done]
    total = (max(s.deleted_at for s in done) - t0) if done else None
    return {
        "stores": len(targets),
        "deleted": len(done),
        "failed": sum(1 for s in targets if s.status == "failed" or s.error),
        "unfinished": sum(1 for s in targets if not s.finished and not s.error),
        "timed_out": sampler.timed_out,
        "total_seconds": round(total, 3) if total is not None else None,
        "per_store_seconds": summary(durations),
        "stores_per_minute": round(len(done) / (total / 60), 2) if total else None,
        **timeline([s.deleted_at for s in done], t0),
        "errors": _errors(targets),
    }


def _load_details(stores: list[StoreRun]) -> None:
    from django.db import connection

    from stores_app.models import Store, StoreEvent

    by_id = {s.store_id: s for s in stores if s.store_id is not None}
    rows = Store.objects.filter(pk__in=list(by_id)).values(
        "id", "status", "status_message", "created_at", "provisioning_started_at", "ready_at", "deleted_at"
    )
    for row in rows:
        run = by_id[row["id"]]
        run.status = row["status"]
        run.message = row["status_message"]
        run.created_at = _ts(row["created_at"])
        run.provisioning_started_at = _ts(row["provisioning_started_at"])
        run.ready_at = _ts(row["ready_at"])
        run.deleted_at = _ts(row["deleted_at"])
    events = StoreEvent.objects.filter(store_id__in=list(by_id)).order_by("created_at", "id")
    for store_id, step, outcome, created in events.values_list("store_id", "step", "outcome", "created_at"):
        key = f"{step}:{outcome}"
        by_id[store_id].events.setdefault(key, created.timestamp())
    connection.close()


# Where a store's time goes, from its timeline: (label, from event, to event).
PHASES = [
    ("queued: request → worker picks it up", "requested", "provisioning_started"),
    ("namespace + Secret", "provisioning_started", "secrets:succeeded"),
    ("helm status + helm upgrade --install (no wait)", "secrets:succeeded", "helm_install:succeeded"),
    ("readiness watching (until workloads ready)", "helm_install:succeeded", "workloads:succeeded"),
    ("helm test", "workloads:succeeded", "smoke_test:succeeded"),
    ("mark ready", "smoke_test:succeeded", "ready:succeeded"),
]


def _phase_breakdown(stores: list[StoreRun]) -> dict:
    out = {}
    for label, start, end in PHASES:
        values = []
        for s in stores:
            marks = dict(s.events)
            marks["requested"] = s.requested
            marks["provisioning_started"] = s.provisioning_started_at
            if marks.get(start) is not None and marks.get(end) is not None:
                values.append(marks[end] - marks[start])
        out[label] = summary(values)
    return out


def _provision_report(stores: list[StoreRun], sampler: Sampler, t0: float) -> dict:
    ready = [s for s in stores if s.status == "ready" and s.ready_at is not None]
    durations = [s.ready_at - s.requested for s in ready]
    accept_ms = [(s.accepted - s.requested) * 1000 for s in stores if s.http_status == 202]
    total = (max(s.ready_at for s in ready) - t0) if ready else None
    intervals = [(s.provisioning_started_at, s.ready_at) for s in ready if s.provisioning_started_at]
    return {
        "stores": len(stores),
        "ready": len(ready),
        "failed": sum(1 for s in stores if s.status == "failed" or s.error),
        "unfinished": sum(1 for s in stores if not s.finished and not s.error),
        "timed_out": sampler.timed_out,
        "total_seconds": round(total, 3) if total is not None else None,
        "per_store_seconds": summary(durations),
        "stores_per_minute": round(len(ready) / (total / 60), 2) if total else None,
        **timeline([s.ready_at for s in ready], t0),
        "accept_ms": summary(accept_ms),
        "max_provisioning_sampled": sampler.max_count("provisioning"),
        "max_provisioning_from_timestamps": max_overlap(intervals),
        "phases_seconds": _phase_breakdown(ready),
        "state_samples": sampler.samples,
        "errors": _errors(stores),
    }


def _errors(stores: list[StoreRun]) -> list[str]:
    out = []
    for s in stores:
        if s.error:
            out.append(f"{s.name}: {s.error}")
        elif s.status == "failed":
            out.append(f"{s.name}: {s.message[:300]}")
    return out[:20]
