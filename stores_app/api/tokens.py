"""API token issue/revoke (django-rest-knox: tokens are stored hashed and can be revoked)."""

from knox import views as knox_views
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
        return response
