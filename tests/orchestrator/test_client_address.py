"""Behind the production proxy chain (TRUSTED_PROXY_COUNT proxies, each appending the address it got the
request from to X-Forwarded-For), rate limits and the audit log key on the real client: through several
hops, with entries the client forged in front, and with malformed entries, which never become a 500 nor
let a client pick its own address."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from stores_app.models import AuditEntry
from stores_app.ratelimits import client_address

PROXY = "10.0.0.9"  # the ingress controller, as the web pod sees it


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (1, "198.51.100.7", "198.51.100.7"),
        # client -> load balancer -> ingress controller -> web: the LB appended the client, the
        # controller the LB; everything left of the client is whatever the client sent.
        (2, "198.51.100.7, 10.0.0.5", "198.51.100.7"),
        (2, "203.0.113.66, 198.51.100.7, 10.0.0.5", "198.51.100.7"),
        (2, "1.1.1.1,2.2.2.2,198.51.100.7,10.0.0.5", "198.51.100.7"),
        # Fewer entries than proxies: the request did not come through all of them.
        (2, "10.0.0.5", PROXY),
        (2, "", PROXY),
        # Malformed where the client should be: the connection's address, never the junk.
        (1, "not-an-address", PROXY),
        (1, "198.51.100.300", PROXY),
        (2, "198.51.100.7,, 10.0.0.5", PROXY),  # an empty entry is not skipped to reach a forged one
        (1, "198.51.100.7; drop table", PROXY),
        # Forms some proxies write: with a port, IPv6 in brackets, upper case.
        (1, "198.51.100.7:4711", "198.51.100.7"),
        (1, "[2001:DB8::7]:443", "2001:db8::7"),
        (1, "2001:DB8::7", "2001:db8::7"),
        # No trusted proxy: the header is not believed at all.
        (0, "198.51.100.7", PROXY),
    ],
)
def test_client_address(settings, hops, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = hops
    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR=PROXY)
    assert client_address(request) == expected


def test_unknown_connection_address(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_address(RequestFactory().get("/", REMOTE_ADDR="")) == "0.0.0.0"


def _login(client, forwarded: str, password: str = "wrong"):
    return client.post(
        "/accounts/login/",
        {"username": "owner", "password": password},
        HTTP_X_FORWARDED_FOR=forwarded,
        REMOTE_ADDR=PROXY,
    )


@pytest.mark.django_db
def test_failed_logins_are_audited_with_the_client_behind_two_proxies(client, owner, settings):
    settings.TRUSTED_PROXY_COUNT = 2
    assert _login(client, "203.0.113.66, 198.51.100.7, 10.0.0.5").status_code == 200
    assert _login(client, "junk, 10.0.0.5").status_code == 200  # a malformed client entry: no 500
    addresses = list(
        AuditEntry.objects.filter(action=AuditEntry.Action.LOGIN_FAILED)
        .order_by("id")
        .values_list("address", flat=True)
    )
    assert addresses == ["198.51.100.7", PROXY]


@pytest.mark.django_db
def test_password_guessing_is_counted_per_real_client_not_per_forged_header(client, owner, settings):
    settings.TRUSTED_PROXY_COUNT = 2
    settings.RATELIMIT_LOGIN = "3/15m"
    # The same client, a new forged prefix each time: one bucket.
    codes = [_login(client, f"203.0.113.{i}, 198.51.100.7, 10.0.0.5").status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]
    # Another client behind the same proxies has a bucket of its own.
    assert _login(client, "198.51.100.8, 10.0.0.5").status_code == 200
    denied = AuditEntry.objects.get(action=AuditEntry.Action.RATE_LIMITED)
    assert denied.address == "198.51.100.7" and denied.details["scope"] == "login"
