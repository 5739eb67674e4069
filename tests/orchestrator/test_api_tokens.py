"""API tokens do not live for ever: they expire when unused, at the latest a fixed time after issue, and
with every password change; and no response that carries one may be kept by a browser or proxy."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from stores_app.models import AuditEntry
from tests.conftest import PASSWORD, csrf_post

pytestmark = pytest.mark.django_db


def issue_token(client, username: str = "owner") -> str:
    basic = base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()
    response = client.post("/api/auth/token/", HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 200, response.content
    assert "no-store" in response["Cache-Control"]  # the body is the token
    return response.json()["token"]


def api_with(token: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api


def test_a_new_token_expires_after_the_idle_days(client, owner):
    issue_token(client)
    token = AuthToken.objects.get(user=owner)
    idle = dt.timedelta(days=django_settings.API_TOKEN_IDLE_DAYS)
    assert token.expiry is not None
    assert abs(token.expiry - (timezone.now() + idle)) < dt.timedelta(minutes=1)


def test_use_extends_a_token_but_never_past_its_maximum_age(client, owner):
    api = api_with(issue_token(client))
    token = AuthToken.objects.get(user=owner)
    max_age = dt.timedelta(days=django_settings.API_TOKEN_MAX_AGE_DAYS)
    # Issued long ago and about to expire: a use pushes the expiry out, but only up to created + max age.
    created = timezone.now() - max_age + dt.timedelta(hours=1)
    AuthToken.objects.filter(pk=token.pk).update(created=created, expiry=timezone.now() + dt.timedelta(minutes=5))
    assert api.get("/api/stores/").status_code == 200
    token.refresh_from_db()
    assert token.expiry == created + max_age
    # Once that moment has passed the token is refused and removed.
    AuthToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - dt.timedelta(seconds=1))
    assert api.get("/api/stores/").status_code == 401
    assert not AuthToken.objects.filter(pk=token.pk).exists()


def test_changing_the_password_on_the_dashboard_revokes_every_token(client, owner, owner_client):
    tokens = [issue_token(client), issue_token(client)]
    response = csrf_post(
        owner_client,
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a-much-newer-passphrase",
            "new_password2": "a-much-newer-passphrase",
        },
    )
    assert response.status_code == 302, response.content
    assert [api_with(token).get("/api/stores/").status_code for token in tokens] == [401, 401]
    revoked = AuditEntry.objects.get(action=AuditEntry.Action.TOKEN_REVOKE, actor=owner)
    assert revoked.details == {"tokens": 2, "reason": "password changed"}
    assert owner_client.get("/").status_code == 200  # the session that changed it stays signed in


def test_a_password_set_anywhere_else_revokes_them_too(client, owner, staff, staff_client):
    token = issue_token(client)
    owner.set_password("reset-by-someone-else")  # what password reset and `changepassword` do
    owner.save()
    assert api_with(token).get("/api/stores/").status_code == 401

    token = issue_token(client, "operator")
    staff_client.force_login(staff)
    staff_client.get("/admin/")
    csrf = staff_client.cookies["csrftoken"].value
    response = staff_client.post(
        f"/admin/auth/user/{staff.pk}/password/",
        {"password1": "another-new-passphrase", "password2": "another-new-passphrase", "usable_password": "true"},
        HTTP_X_CSRFTOKEN=csrf,
    )
    assert response.status_code == 302, response.content
    assert api_with(token).get("/api/stores/").status_code == 401


def test_saving_a_user_without_a_new_password_keeps_the_tokens(client, owner, owner_client):
    token = issue_token(client)
    client.login(username="owner", password=PASSWORD)  # a login saves the user (last_login)
    owner.first_name = "Olive"
    owner.save()
    call_command("ensure_demo_user", username="owner")  # touches nothing of an existing user
    assert api_with(token).get("/api/stores/").status_code == 200


def test_the_page_that_shows_a_new_token_is_never_cached_and_says_when_it_expires(owner, owner_client):
    assert "no-store" in owner_client.get("/tokens/")["Cache-Control"]
    created = csrf_post(owner_client, "/tokens/", {"create": "1"})
    assert created.status_code == 200 and b'id="new-token"' in created.content
    assert "no-store" in created["Cache-Control"]
    expiry = AuthToken.objects.get(user=owner).expiry
    assert f'<td data-label="Expires">{expiry:%Y-%m-%d %H:%M}</td>' in created.content.decode()
