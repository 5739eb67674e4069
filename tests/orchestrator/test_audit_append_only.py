"""The audit log is append-only in Postgres itself: an UPDATE or DELETE is refused whichever way it comes
(raw SQL, a queryset bypassing the model), while deleting a user still works and leaves the entries,
with the name they were recorded under."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from stores_app import audit
from stores_app.models import AuditEntry

pytestmark = pytest.mark.django_db

TABLE = AuditEntry._meta.db_table


@pytest.fixture
def entry(owner):
    return audit.record(AuditEntry.Action.TOKEN_CREATE, actor=owner, address="198.51.100.7", via="api")


def refused(sql: str, *params) -> str:
    with pytest.raises(DatabaseError) as error, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(error.value)


@pytest.mark.parametrize(
    "sql",
    [
        f"UPDATE {TABLE} SET outcome = 'denied' WHERE id = %s",
        f"UPDATE {TABLE} SET details = '{{}}'::jsonb WHERE id = %s",
        f"UPDATE {TABLE} SET address = '203.0.113.1' WHERE id = %s",
        f"UPDATE {TABLE} SET actor_name = 'someone else', actor_id = NULL WHERE id = %s",
        f"DELETE FROM {TABLE} WHERE id = %s",
    ],
)
def test_raw_sql_cannot_change_or_remove_an_entry(entry, sql):
    assert "append-only" in refused(sql, entry.pk)
    kept = AuditEntry.objects.get(pk=entry.pk)
    assert (kept.outcome, kept.address, kept.actor_name, kept.details) == (
        "success",
        "198.51.100.7",
        "owner",
        {"via": "api"},
    )


def test_querysets_cannot_either(entry):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(outcome="failed")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk)._raw_delete(connection.alias)
    assert AuditEntry.objects.filter(pk=entry.pk, outcome="success").exists()


def test_deleting_a_user_unlinks_their_entries_and_keeps_them(entry, owner):
    owner.delete()
    kept = AuditEntry.objects.get(pk=entry.pk)
    assert kept.actor_id is None and kept.actor_name == "owner"
