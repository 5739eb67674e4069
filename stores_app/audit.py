"""Writes the append-only audit log. Callers pass what happened; this decides how it is recorded."""

from __future__ import annotations

from typing import Any

from .models import AuditEntry, Store


def client_address(request) -> str | None:
    if request is None:
        return None
    from .ratelimits import client_address as resolve

    return resolve(request) or None


def record(
    action: str,
    *,
    outcome: str = AuditEntry.Outcome.SUCCESS,
    actor=None,
    request=None,
    address: str | None = None,
    store: Store | None = None,
    **details: Any,
) -> AuditEntry:
    if (
        actor is None
        and request is not None
        and getattr(request, "user", None) is not None
        and request.user.is_authenticated
    ):
        actor = request.user
    return AuditEntry.objects.create(
        action=action,
        outcome=outcome,
        actor=actor,
        actor_name=getattr(actor, "username", "") or details.pop("actor_name", "system"),
        address=address or client_address(request),
        store=store,
        store_name=store.name if store else "",
        details=details,
    )
