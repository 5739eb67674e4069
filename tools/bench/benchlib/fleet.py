"""What the orchestrator's peers share (raw helm in baseline.py, Flux in tools/flux/peer.py): the stores
they create, named and valued by the orchestrator's own rules, when such a store counts as gone, and the
figures of a provisioning or a teardown, so that every column of the benchmark means the same."""

from __future__ import annotations

from dataclasses import dataclass, field

from .stats import summary


@dataclass
class StoreSpec:
    """One store as the orchestrator would make it: names, chart values, credentials Secret."""

    index: int
    engine: str
    store_id: int
    slug: str
    namespace: str
    release: str
    values: dict
    secret_name: str


@dataclass
class MeasuredStore(StoreSpec):
    """A peer's store and its times (epoch seconds): requested and ready, deletion requested and gone, with
    the reason where it failed; what provisioning_figures and teardown_figures read."""

    requested: float = 0.0
    ready: float | None = None
    phases: dict[str, float] = field(default_factory=dict)
    error: str = ""
    delete_requested: float = 0.0
    deleted: float | None = None
    delete_error: str = ""


def store_specs(id_base: int, slug_prefix: str, n: int, engines: list[str]) -> list[StoreSpec]:
    """`n` stores with ids from `id_base` (far above any real store's), engines taken in turn."""
    from stores_app.models import Store
    from stores_app.naming import namespace_for, release_for
    from stores_app.provisioning import chart_values

    out = []
    for i in range(n):
        engine = engines[i % len(engines)]
        store_id, slug = id_base + i, f"{slug_prefix}-{i}"
        store = Store(id=store_id, slug=slug, engine=engine, release_name=release_for(store_id, slug))
        store.namespace = namespace_for(store_id, slug)
        values = chart_values(store)
        out.append(StoreSpec(i, engine, store_id, slug, store.namespace, store.release_name, values, store.secret_name))
    return out


def namespace_gone(core, namespace: str) -> bool:
    """Gone as the benchmark means it: the namespace, and every PersistentVolume bound into it."""
    from kubernetes.client.exceptions import ApiException

    try:
        core.read_namespace(namespace, _request_timeout=20)
        return False
    except ApiException as exc:
        if exc.status != 404:
            raise
    pvs = core.list_persistent_volume(_request_timeout=20).items
    return not any(pv.spec.claim_ref and pv.spec.claim_ref.namespace == namespace for pv in pvs)


def timeline(done_at: list[float], t0: float) -> dict:
    """When the stores finished, from `t0`: each one's second (for the plot) and how many finished in each
    minute (the last one may be partial) — does throughput hold up as the cluster fills, or sag?"""
    seconds = sorted(round(max(0.0, t - t0), 2) for t in done_at)
    counts = [0] * (int(seconds[-1] // 60) + 1) if seconds else []
    for t in seconds:
        counts[int(t // 60)] += 1
    return {"per_minute": counts, "done_seconds": seconds}


def provisioning_figures(stores: list, t0: float) -> dict:
    """Stores ready, failed, wall clock from `t0` to the last one ready, per store, per minute, phases.
    A store is failed when it has an `error` (and is not `unfinished`, which a peer may count apart)."""
    ready = [s for s in stores if s.ready is not None]
    total = (max(s.ready for s in ready) - t0) if ready else None
    phases: dict[str, list[float]] = {}
    for s in ready:
        for label, seconds in s.phases.items():
            phases.setdefault(label, []).append(seconds)
    return {
        "stores": len(stores),
        "ready": len(ready),
        "failed": sum(1 for s in stores if s.error and not getattr(s, "unfinished", False)),
        "total_seconds": round(total, 3) if total is not None else None,
        "per_store_seconds": summary([s.ready - s.requested for s in ready]),
        "stores_per_minute": round(len(ready) / (total / 60), 2) if total else None,
        **timeline([s.ready for s in ready], t0),
        "phases_seconds": {label: summary(values) for label, values in phases.items()},
        "errors": [f"{s.namespace}: {s.error}" for s in stores if s.error][:20],
    }


def teardown_figures(stores: list, t0: float) -> dict:
    """Stores gone, failed, wall clock from `t0` to the last one gone, per store, per minute."""
    done = [s for s in stores if s.deleted is not None]
    total = (max(s.deleted for s in done) - t0) if done else None
    return {
        "stores": len(stores),
        "deleted": len(done),
        "failed": sum(1 for s in stores if s.delete_error),
        "total_seconds": round(total, 3) if total is not None else None,
        "per_store_seconds": summary([s.deleted - s.delete_requested for s in done]),
        "stores_per_minute": round(len(done) / (total / 60), 2) if total else None,
        **timeline([s.deleted for s in done], t0),
        "errors": [f"{s.namespace}: {s.delete_error}" for s in stores if s.delete_error][:20],
    }
