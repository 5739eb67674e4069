"""Emails owners about their stores: ready, failed, degraded, recovered.

The audit log is the outbox. Every one of those changes already writes its audit row in the same
transaction as the status change, so a pass that mails the rows not mailed yet loses none (a broker
or mail server that is down only delays the mail) and needs no hook in the code that makes the
change. Each row gets one `OwnerNotification` (a unique key), claimed under a lease before sending,
so no change is mailed twice by two passes; a send that fails is tried again on later passes, up to
NOTIFY_MAX_ATTEMPTS. Mails never carry credentials, only what happened and where to look.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from . import audit
from .models import AuditEntry, OwnerNotification

log = logging.getLogger(__name__)

# What each notifying change is called in the subject line.
SUBJECTS = {
    AuditEntry.Action.STORE_READY: "{name} is ready",
    AuditEntry.Action.STORE_FAILED: "{name} failed",
    AuditEntry.Action.STORE_DEGRADED: "{name} is degraded",
    AuditEntry.Action.STORE_RECOVERED: "{name} is healthy again",
}
BATCH = 50
CLAIM_SECONDS = 120


def pick_up(now: dt.datetime | None = None) -> int:
    """Give every new notifying audit row its notification; returns how many were added. Rows older
    than NOTIFY_MAX_AGE_SECONDS (the notifier was not running then) are not mailed any more."""
    now = now or timezone.now()
    horizon = now - dt.timedelta(seconds=settings.NOTIFY_MAX_AGE_SECONDS)
    new = AuditEntry.objects.filter(
        action__in=list(SUBJECTS), created_at__gte=horizon, store__isnull=False, notification__isnull=True
    ).values_list("pk", flat=True)[: BATCH * 4]
    made = OwnerNotification.objects.bulk_create(
        [OwnerNotification(audit_entry_id=pk) for pk in new], ignore_conflicts=True
    )
    return len(made)


def claim(now: dt.datetime | None = None) -> list[OwnerNotification]:
    """Claim pending notifications no other pass holds (oldest first), counting the attempt."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            OwnerNotification.objects.select_for_update(skip_locked=True)
            .filter(state=OwnerNotification.State.PENDING)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .order_by("audit_entry__created_at")[:BATCH]
        )
        for row in rows:
            row.attempts += 1
            row.claimed_until = now + dt.timedelta(seconds=CLAIM_SECONDS)
            row.save(update_fields=["attempts", "claimed_until"])
    return rows


def notify_pass() -> dict[str, int]:
    """One pass: pick up new changes, then send what is due. Returns counts by outcome."""
    pick_up()
    counts: dict[str, int] = {}
    for row in claim():
        outcome = deliver(row)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def deliver(row: OwnerNotification) -> str:
    """Send one claimed notification and record how it went: "sent", "skipped", "retry" or "failed"."""
    entry = AuditEntry.objects.select_related("store__owner").get(pk=row.audit_entry_id)
    store = entry.store
    owner = store.owner if store else None
    if owner is None or not owner.email:
        return _finish(row, OwnerNotification.State.SKIPPED, "The owner has no email address.")
    subject, body = compose(entry)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [owner.email], fail_silently=False)
    except (smtplib.SMTPException, OSError) as exc:
        return _failed_attempt(row, entry, f"{type(exc).__name__}: {exc}")
    return _finish(row, OwnerNotification.State.SENT, "", sent=True)


def compose(entry: AuditEntry) -> tuple[str, str]:
    """Subject and plain-text body for an audit entry's change."""
    store = entry.store
    context = {
        "store": store,
        "entry": entry,
        "kind": entry.action.split(".", 1)[1],
        "message": (entry.details or {}).get("message", ""),
        "store_page": f"{settings.DASHBOARD_URL}{store.get_absolute_url()}",
        "dashboard": settings.DASHBOARD_URL,
    }
    subject = "[Store Orchestrator] " + SUBJECTS[entry.action].format(name=store.name)
    body = render_to_string("email/store_change.txt", context)
    return subject, body


def _finish(row: OwnerNotification, state: str, note: str, sent: bool = False) -> str:
    OwnerNotification.objects.filter(pk=row.pk).update(
        state=state, note=note[:500], claimed_until=None, sent_at=timezone.now() if sent else None
    )
    return str(state)


def _failed_attempt(row: OwnerNotification, entry: AuditEntry, error: str) -> str:
    """A send that failed is tried again on a later pass (after a growing pause), until the attempts run out."""
    log.warning("could not email the owner of store %s: %s", entry.store_id, error, extra={"store_id": entry.store_id})
    if row.attempts >= settings.NOTIFY_MAX_ATTEMPTS:
        with transaction.atomic():
            _finish(row, OwnerNotification.State.FAILED, error)
            audit.record(
                AuditEntry.Action.NOTIFICATION_FAILED,
                outcome=AuditEntry.Outcome.FAILED,
                store=entry.store,
                actor_name="system",
                change=entry.action,
                reason=error[:300],
            )
        return "failed"
    pause = dt.timedelta(seconds=settings.NOTIFY_INTERVAL_SECONDS * 2**row.attempts)
    OwnerNotification.objects.filter(pk=row.pk).update(note=error[:500], claimed_until=timezone.now() + pause)
    return "retry"
