"""Token authentication for the API: knox's check, plus the token's last use (shown on the tokens page).

Apart from the token views because DRF imports its authentication classes while it sets itself up,
before views may be imported."""

from __future__ import annotations

from django.core.cache import cache
from django.utils import timezone
from knox import auth as knox_auth

from ..models import ApiTokenDetails

LAST_USED_EVERY_SECONDS = 60


def record_use(instance) -> None:
    """Note that the token was used now, at most once a minute per token (one cache check otherwise)."""
    if not cache.add(f"token-used:{instance.digest}", 1, LAST_USED_EVERY_SECONDS):
        return
    now = timezone.now()
    if not ApiTokenDetails.objects.filter(token=instance).update(last_used_at=now):
        ApiTokenDetails.objects.get_or_create(token=instance, defaults={"last_used_at": now})


class TokenAuthentication(knox_auth.TokenAuthentication):
    def validate_user(self, auth_token):
        result = super().validate_user(auth_token)
        record_use(auth_token)
        return result
