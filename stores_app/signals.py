"""Audits failed logins, whichever surface they come from."""

from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from . import audit
from .models import AuditEntry


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    username = str((credentials or {}).get("username", ""))[:150]
    # DRF's Basic authentication sends its own Request, whose `user` would run authentication again
    # (and fail again, and land here again): record the underlying Django request instead.
    request = getattr(request, "_request", request)
    audit.record(
        AuditEntry.Action.LOGIN_FAILED,
        outcome=AuditEntry.Outcome.DENIED,
        request=request,
        actor_name=username or "anonymous",
        username=username,
    )
