"""API tokens (django-rest-knox): issued hashed, named, expiring (settings REST_KNOX), revoked on logout
and whenever the user's password changes, never cached on the way to the user; their last use is kept
(at most once a minute) so an owner can tell a live token from a forgotten one."""

from __future__ import annotations

import re

from django.contrib.auth.signals import user_logged_in
from django.http.request import RawPostDataException
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox import views as knox_views
from knox.models import AuthToken
from rest_framework import serializers
from rest_framework.authentication import BasicAuthentication, SessionAuthentication
from rest_framework.exceptions import Throttled
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from .. import audit, ratelimits
from ..models import ApiTokenDetails, AuditEntry
from .authentication import TokenAuthentication
from .serializers import ErrorSerializer, TextField

TOKEN_NAME_MAX = 60


def issue_token(user, name: str, request=None, **details) -> tuple[AuthToken, str]:
    """A new token for `user` with its name; the token itself is returned once and never stored."""
    instance, token = AuthToken.objects.create(user=user)
    ApiTokenDetails.objects.create(token=instance, name=name.strip()[:TOKEN_NAME_MAX])
    audit.record(AuditEntry.Action.TOKEN_CREATE, request=request, actor=user, name=name[:TOKEN_NAME_MAX], **details)
    return instance, token


def revoke_token(user, token_key: str, request=None) -> bool:
    """Revoke one of `user`'s tokens by the part of it that is shown (its first characters)."""
    tokens = AuthToken.objects.filter(user=user, token_key=token_key)
    names = [d.name for d in ApiTokenDetails.objects.filter(token__in=tokens)]
    _, deleted = tokens.delete()
    revoked = deleted.get(AuthToken._meta.label, 0)
    if revoked:
        audit.record(AuditEntry.Action.TOKEN_REVOKE, request=request, actor=user, name=", ".join(names)[:120])
    return bool(revoked)


def revoke_all(user, reason: str) -> int:
    """Delete every API token of `user`; audited when there was one. Returns how many."""
    _, deleted = AuthToken.objects.filter(user=user).delete()
    revoked = deleted.get(AuthToken._meta.label, 0)
    if revoked:
        audit.record(AuditEntry.Action.TOKEN_REVOKE, actor=user, tokens=revoked, reason=reason)
    return revoked


class TokenRequestSerializer(serializers.Serializer):
    name = TextField(
        required=False,
        allow_blank=True,
        max_length=TOKEN_NAME_MAX,
        help_text="What the token is for, e.g. 'CI deploys' (shown on the API tokens page).",
    )

    def to_internal_value(self, data):
        if data is None or data == "":
            data = {}
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"detail": 'Send a JSON object such as {"name": "CI deploys"}, or nothing.'}
            )
        unknown = sorted(set(data) - {"name"})
        if unknown:
            raise serializers.ValidationError({key: "Unknown field; send only name." for key in unknown})
        return super().to_internal_value(data)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`. Shown only this once.")
    expiry = serializers.DateTimeField(help_text="Expires then unless used; each use moves it on, up to a maximum age.")
    name = serializers.CharField()


INVALID_RESPONSE = OpenApiResponse(
    response={
        "type": "object",
        "required": ["detail"],
        "properties": {"detail": {"type": "string"}},
        "additionalProperties": {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]},
    },
    description="Invalid input; the messages say what to fix",
)
_ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="Not authenticated: HTTP Basic credentials are needed"),
    429: OpenApiResponse(ErrorSerializer, description="Too many requests; Retry-After says how many seconds to wait"),
}


# What HTTP tools send for "POST without a body": nothing, or an empty multipart message.
_EMPTY_MULTIPART = re.compile(rb"--[^\r\n]+--\r?\n?")


def _carries_nothing(request) -> bool:
    """Whether a non-JSON request has no body to speak of (curl -X POST, wget --post-data '', a test
    client's empty form): that is "no name", not a body of the wrong type (which is answered 415)."""
    if request.content_type.startswith("application/json"):
        return False
    try:
        body = request._request.body.strip()
    except RawPostDataException:
        return False
    return not body or bool(_EMPTY_MULTIPART.fullmatch(body))


class TokenLoginView(knox_views.LoginView):
    """POST with HTTP Basic credentials (or a session) to get a new token; it is shown only once."""

    authentication_classes = [BasicAuthentication, SessionAuthentication]
    parser_classes = [JSONParser]

    def initial(self, request, *args, **kwargs):
        # Limit by address before the password is even checked.
        wait = ratelimits.check(request._request, "login")
        if wait is not None:
            raise Throttled(wait=wait)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            200: TokenSerializer,
            400: INVALID_RESPONSE,
            415: OpenApiResponse(ErrorSerializer, description="The body is not JSON"),
            **_ERRORS,
        },
    )
    def post(self, request, format=None):
        """Issue a new API token for the caller (HTTP Basic); the body may name it."""
        params = TokenRequestSerializer(data={} if _carries_nothing(request) else request.data)
        params.is_valid(raise_exception=True)
        name = params.validated_data.get("name") or f"API token of {timezone.now():%Y-%m-%d %H:%M}"
        instance, token = issue_token(request.user, name, request=request, via="api")
        data = {"token": token, "expiry": self.format_expiry_datetime(instance.expiry), "name": name}
        user_logged_in.send(sender=request.user.__class__, request=request, user=request.user)
        response = Response(data)
        response["Cache-Control"] = "no-store"  # the body is the token itself
        return response


class LogoutView(knox_views.LogoutView):
    """Revoke the token this request is made with."""

    authentication_classes = [TokenAuthentication]

    @extend_schema(request=None, responses={204: OpenApiResponse(description="Token revoked"), **_ERRORS})
    def post(self, request, format=None):
        return super().post(request, format=format)


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
