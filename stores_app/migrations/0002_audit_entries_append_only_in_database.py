"""Audit entries become append-only in Postgres itself, not only in the model: any UPDATE or DELETE,
through the ORM, raw SQL or a psql session of the application's role, is refused by a trigger.

The one change allowed is unlinking: when a user or store row is deleted, the foreign keys are set
to NULL (on_delete=SET_NULL) while the entry keeps the actor's and store's names. TRUNCATE is not
blocked (test databases are emptied with it), and the table's owner could drop the trigger: the
database role that owns it is the boundary, as for every other table.
"""

from django.db import migrations

FUNCTION = """
CREATE FUNCTION stores_app_auditentry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (NEW.actor_id IS NULL OR NEW.actor_id IS NOT DISTINCT FROM OLD.actor_id)
       AND (NEW.store_id IS NULL OR NEW.store_id IS NOT DISTINCT FROM OLD.store_id)
       AND to_jsonb(NEW) - 'actor_id' - 'store_id' = to_jsonb(OLD) - 'actor_id' - 'store_id' THEN
        RETURN NEW;  -- a deleted user or store unlinked; everything recorded stays as it was
    END IF;
    RAISE EXCEPTION 'audit entries are append-only: % of entry % refused', TG_OP, OLD.id
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER stores_app_auditentry_append_only
    BEFORE UPDATE OR DELETE ON stores_app_auditentry
    FOR EACH ROW EXECUTE FUNCTION stores_app_auditentry_append_only();
"""

REVERSE = """
DROP TRIGGER IF EXISTS stores_app_auditentry_append_only ON stores_app_auditentry;
DROP FUNCTION IF EXISTS stores_app_auditentry_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("stores_app", "0001_initial")]

    operations = [migrations.RunSQL(FUNCTION, REVERSE)]
