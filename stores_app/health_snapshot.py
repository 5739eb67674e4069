"""Looks at a running store in the cluster and reduces what it sees to a snapshot an owner may read.

Only reads (workloads, pods, the namespace's ResourceQuota and events, and a log tail of the store's
main container), through the store's own namespace rights. Nothing secret leaves this module: every
value of the store's credentials Secret, and anything that looks like a password, token or key, is
redacted from the log tail and the event messages before they are returned, and the tail is bounded
in size after redaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import dataclass, field

from django.conf import settings
from kubernetes.utils import parse_quantity

from .kube import KubeError, KubeGateway, Readiness
from .models import Engine, Store

# The pod (by its chart's component label) and container whose log an owner cares about: the shop itself.
MAIN_CONTAINER = {Engine.WOOCOMMERCE: ("wordpress", "wordpress"), Engine.MEDUSA: ("server", "medusa")}
REDACTED = "[redacted]"
# Read at most this much log from the API; the tail kept is HEALTH_LOG_TAIL_BYTES of it, after redaction.
LOG_READ_LIMIT_BYTES = 64 * 1024
LOG_READ_TIMEOUT_SECONDS = 5
QUOTA_RESOURCES = ("requests.cpu", "limits.cpu", "requests.memory", "limits.memory", "requests.storage")

# Obvious secrets whatever the store's Secret holds: key=value / key: value pairs with a secret-sounding
# key, credentials in URLs, Authorization headers, JWTs and PEM private keys.
_SECRET_PATTERNS = (
    re.compile(
        r"(?i)\b((?:[a-z0-9_.-]*)(?:password|passwd|pwd|secret|token|api[_-]?key|auth[_-]?key|salt)[a-z0-9_.-]*"
        r"[\"']?\s*[:=]\s*[\"']?)([^\s\"'&,;]+)"
    ),
    re.compile(r"(?i)(authorization:\s*(?:bearer|basic|token)\s+)(\S+)"),
    re.compile(r"(://[^/\s:@]+:)([^@\s/]+)(@)"),
    re.compile(r"()(eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"),
    re.compile(r"()(-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$))", re.S),
)


@dataclass
class Snapshot:
    """What one look at a running store found."""

    readiness: Readiness
    workloads: list[dict] = field(default_factory=list)
    pods: list[dict] = field(default_factory=list)
    quota: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    log_source: str = ""
    log_tail: str = ""
    log_note: str = ""

    @property
    def healthy(self) -> bool:
        return self.readiness.ready and not self.readiness.failed


def redact(text: str, secret_values: list[str]) -> str:
    """`text` without any of `secret_values` (longest first, so no part of a longer one survives) or
    anything that looks like a secret."""
    for value in sorted({v for v in secret_values if v}, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED + (m.group(3) if m.lastindex == 3 else ""), text)
    return text


def bounded_tail(text: str, limit: int) -> str:
    """The last `limit` bytes of `text`, starting at a line boundary."""
    data = text.encode()
    if len(data) <= limit:
        return text
    tail = data[-limit:].decode(errors="ignore")
    newline = tail.find("\n")
    return tail[newline + 1 :] if newline != -1 else tail


class StoreHealthGateway(KubeGateway):
    """The read-only calls a health look makes, inside the store's namespace."""

    def workloads(self, namespace: str, release: str) -> list[dict]:
        selector = f"app.kubernetes.io/instance={release}"
        doing = f"read workloads in {namespace}"
        found = []
        for kind, lister in (
            ("Deployment", self.apps.list_namespaced_deployment),
            ("StatefulSet", self.apps.list_namespaced_stateful_set),
        ):
            for item in self._call(doing, lister, namespace, label_selector=selector).items:
                desired = item.spec.replicas if item.spec.replicas is not None else 1
                ready = item.status.ready_replicas or 0
                found.append({"kind": kind, "name": item.metadata.name, "ready": ready, "desired": desired})
        return sorted(found, key=lambda w: (w["kind"], w["name"]))

    def pods(self, namespace: str) -> list[dict]:
        items = self._call(f"read pods in {namespace}", self.core.list_namespaced_pod, namespace).items
        return sorted((_pod_row(pod) for pod in items), key=lambda p: p["name"])

    def quota(self, namespace: str) -> list[dict]:
        items = self._call(f"read quotas in {namespace}", self.core.list_namespaced_resource_quota, namespace).items
        rows = []
        for quota in items:
            hard = quota.status.hard or {}
            used = quota.status.used or {}
            for resource in sorted(hard, key=_quota_order):
                rows.append(_quota_row(resource, used.get(resource, "0"), hard[resource]))
        return rows

    def events(self, namespace: str, limit: int) -> list[dict]:
        items = self._call(f"read events in {namespace}", self.core.list_namespaced_event, namespace).items
        items.sort(key=_event_time, reverse=True)
        return [_event_row(event) for event in items[:limit]]

    def secret_values(self, namespace: str, name: str) -> list[str]:
        secret = self._call(f"read Secret {name}", self.core.read_namespaced_secret, name, namespace, tolerate=(404,))
        if secret is None:
            return []
        return [base64.b64decode(raw).decode(errors="ignore") for raw in (secret.data or {}).values() if raw]

    def log_tail(self, namespace: str, pod: str, container: str) -> str:
        return self.core.read_namespaced_pod_log(
            pod,
            namespace,
            container=container,
            tail_lines=settings.HEALTH_LOG_TAIL_LINES,
            limit_bytes=LOG_READ_LIMIT_BYTES,
            _request_timeout=LOG_READ_TIMEOUT_SECONDS,
        )


def observe(store: Store) -> Snapshot:
    """One look at the store; raises KubeError when the cluster cannot be read."""
    gateway = StoreHealthGateway()
    namespace, release = store.namespace, store.release_name
    snapshot = Snapshot(readiness=gateway.readiness(namespace, release))
    snapshot.workloads = gateway.workloads(namespace, release)
    snapshot.pods = gateway.pods(namespace)
    snapshot.quota = gateway.quota(namespace)
    secrets = gateway.secret_values(namespace, store.secret_name)
    snapshot.events = [
        {**event, "message": redact(event["message"], secrets)}
        for event in gateway.events(namespace, settings.HEALTH_EVENTS)
    ]
    _read_log(gateway, store, snapshot, secrets)
    return snapshot


def _read_log(gateway: StoreHealthGateway, store: Store, snapshot: Snapshot, secrets: list[str]) -> None:
    """The main container's log tail, or a note saying why there is none (the rest of the look still counts)."""
    component, container = MAIN_CONTAINER.get(store.engine, ("", ""))
    pods = [p for p in snapshot.pods if p["component"] == component]
    if not pods:
        snapshot.log_note = f"No {component or 'main'} pod is running, so there is no log to show."
        return
    pod = sorted(pods, key=lambda p: (not p["ready"], p["name"]))[0]
    snapshot.log_source = f"pod/{pod['name']} container {container}"
    try:
        raw = gateway.log_tail(store.namespace, pod["name"], container) or ""
    except Exception as exc:  # any failure to read a log leaves the rest of the snapshot intact
        snapshot.log_note = f"The log could not be read: {_short_error(exc)}"
        return
    if len(raw.encode()) >= LOG_READ_LIMIT_BYTES:
        raw = raw.split("\n", 1)[-1]  # the first line may begin inside a secret: drop it
    text = redact(raw, secrets)
    snapshot.log_tail = bounded_tail(text, settings.HEALTH_LOG_TAIL_BYTES)
    if not snapshot.log_tail:
        snapshot.log_note = "The container has written nothing to its log yet."


def _short_error(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    if status:
        return f"the API server answered {status} {reason or ''}".strip()
    return type(exc).__name__


def _pod_row(pod) -> dict:
    statuses = pod.status.container_statuses or []
    waiting = [s.state.waiting.reason for s in statuses if s.state and s.state.waiting and s.state.waiting.reason]
    labels = pod.metadata.labels or {}
    return {
        "name": pod.metadata.name,
        "component": labels.get("app.kubernetes.io/component", ""),
        "phase": pod.status.phase or "Unknown",
        "ready": bool(statuses) and all(s.ready for s in statuses),
        "restarts": sum(s.restart_count or 0 for s in statuses),
        "reason": ", ".join(waiting),
    }


def _quota_order(resource: str) -> tuple[int, str]:
    return (QUOTA_RESOURCES.index(resource) if resource in QUOTA_RESOURCES else len(QUOTA_RESOURCES), resource)


def _quota_row(resource: str, used: str, hard: str) -> dict:
    try:
        limit = parse_quantity(hard)
        percent = int(parse_quantity(used) * 100 / limit) if limit else 0
    except ValueError:
        percent = 0
    return {"resource": resource, "used": used, "hard": hard, "percent": min(percent, 100)}


def _event_time(event) -> dt.datetime:
    when = event.last_timestamp or event.event_time or event.metadata.creation_timestamp
    return when or dt.datetime.min.replace(tzinfo=dt.UTC)


def _event_row(event) -> dict:
    involved = event.involved_object
    when = _event_time(event)
    return {
        "time": when.isoformat(),
        "type": event.type or "Normal",
        "reason": event.reason or "",
        "object": f"{involved.kind}/{involved.name}" if involved else "",
        "count": event.count or 1,
        "message": (event.message or "")[:500],
    }


__all__ = ["KubeError", "Snapshot", "bounded_tail", "observe", "redact"]
