"""Owners are emailed (locmem backend) when a store becomes ready, fails, degrades or recovers: once per
change, never with a secret, retried while the mail server refuses, skipped without an address."""

from __future__ import annotations

import datetime as dt
import smtplib

import pytest
from django.core import mail
from django.utils import timezone

from stores_app import audit, notify
from stores_app.models import AuditEntry, OwnerNotification, Store

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(owner):
    owner.email = "owner@example.test"
    owner.save()
    return Store.objects.create(owner=owner, name="Corner Shop", slug="corner-shop", engine="medusa", status="ready")


def test_each_change_is_mailed_once_to_the_owner(store, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    audit.record(AuditEntry.Action.STORE_READY, store=store, actor_name="system")
    audit.record(
        AuditEntry.Action.STORE_DEGRADED, store=store, actor_name="system", message="waiting for deployment/web"
    )
    audit.record(AuditEntry.Action.STORE_CREATE, store=store, actor=store.owner)  # not a notifying change
    assert notify.notify_pass() == {"sent": 2}
    assert notify.notify_pass() == {}  # nothing twice
    subjects = sorted(m.subject for m in mail.outbox)
    assert subjects == ["[Store Orchestrator] Corner Shop is degraded", "[Store Orchestrator] Corner Shop is ready"]
    assert all(m.to == ["owner@example.test"] for m in mail.outbox)
    degraded = next(m for m in mail.outbox if "degraded" in m.subject)
    assert "waiting for deployment/web" in degraded.body and f"/stores/{store.pk}/" in degraded.body
    assert "password" not in "".join(m.body for m in mail.outbox).lower()


def test_a_failed_send_is_retried_then_given_up_and_audited(store, settings, monkeypatch):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.NOTIFY_MAX_ATTEMPTS = 2
    audit.record(AuditEntry.Action.STORE_FAILED, store=store, actor_name="system", reason="smoke_test")

    def refuse(*args, **kwargs):
        raise smtplib.SMTPServerDisconnected("connection closed")

    monkeypatch.setattr(notify, "send_mail", refuse)
    assert notify.notify_pass() == {"retry": 1}
    row = OwnerNotification.objects.get()
    assert row.state == "pending" and "connection closed" in row.note
    OwnerNotification.objects.update(claimed_until=timezone.now() - dt.timedelta(seconds=1))
    assert notify.notify_pass() == {"failed": 1}
    assert AuditEntry.objects.filter(action=AuditEntry.Action.NOTIFICATION_FAILED, store=store).count() == 1
    monkeypatch.undo()
    assert notify.notify_pass() == {} and mail.outbox == []


def test_no_address_is_skipped_and_old_changes_are_not_mailed(store, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    audit.record(AuditEntry.Action.STORE_READY, store=store, actor_name="system")
    settings.NOTIFY_MAX_AGE_SECONDS = 0
    assert notify.notify_pass() == {}
    settings.NOTIFY_MAX_AGE_SECONDS = 3600
    store.owner.email = ""
    store.owner.save()
    assert notify.notify_pass() == {"skipped": 1}
    assert mail.outbox == []
