"""Audits failed logins, whichever surface they come from."""

from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from . import audit
from .models import AuditEntry


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    username = str((credentials or {}).get("username", ""))[:150]
    audit.record(
        AuditEntry.Action.LOGIN_FAILED,
        outcome=AuditEntry.Outcome.DENIED,
        request=request,
        actor_name=username or "anonymous",
        username=username,
    )
