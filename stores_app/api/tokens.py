"""API tokens (django-rest-knox): issued hashed, expiring (settings REST_KNOX), revoked on logout and
whenever the user's password changes, and never cached on the way to the user."""

from knox import views as knox_views
from knox.models import AuthToken
from rest_framework.authentication import BasicAuthentication, SessionAuthentication
from rest_framework.exceptions import Throttled

from .. import audit, ratelimits
from ..models import AuditEntry


class TokenLoginView(knox_views.LoginView):
    """POST with HTTP Basic credentials (or a session) to get a new token; it is shown only once."""

    authentication_classes = [BasicAuthentication, SessionAuthentication]

    def initial(self, request, *args, **kwargs):
        # Limit by address before the password is even checked.
        wait = ratelimits.check(request._request, "login")
        if wait is not None:
            raise Throttled(wait=wait)
        super().initial(request, *args, **kwargs)

    def post(self, request, format=None):
        response = super().post(request, format=format)
        audit.record(AuditEntry.Action.TOKEN_CREATE, request=request, via="api")
        response["Cache-Control"] = "no-store"  # the body is the token itself
        return response


def revoke_all(user, reason: str) -> int:
    """Delete every API token of `user`; audited when there was one. Returns how many."""
    revoked, _ = AuthToken.objects.filter(user=user).delete()
    if revoked:
        audit.record(AuditEntry.Action.TOKEN_REVOKE, actor=user, tokens=revoked, reason=reason)
    return revoked


class RevokeTokensOnPasswordChange:
    """Listed in AUTH_PASSWORD_VALIDATORS for its `password_changed` hook, which Django calls whenever a
    password is set and saved (password change and reset pages, the admin, `changepassword`), but not
    when only the stored hash is upgraded. A token issued under the old password must not outlive it."""

    def validate(self, password, user=None) -> None:
        return None  # accepts every password: the other validators judge them

    def password_changed(self, password, user=None) -> None:
        if user is not None and user.pk is not None:
            revoke_all(user, reason="password changed")

    def get_help_text(self) -> str:
        return "Changing your password revokes your API tokens."
