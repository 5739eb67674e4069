"""Orphaned namespaces remember what staff asked for (adopt or delete), since when, and why it failed:
the worker carries the request out, the dashboard shows how it went."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("stores_app", "0002_audit_entries_append_only_in_database")]

    operations = [
        migrations.AddField(
            model_name="orphannamespace",
            name="action_error",
            field=models.TextField(blank=True, help_text="Why the last requested action failed."),
        ),
        migrations.AddField(
            model_name="orphannamespace",
            name="requested_action",
            field=models.CharField(blank=True, choices=[("adopt", "Adopt"), ("delete", "Delete")], max_length=10),
        ),
        migrations.AddField(
            model_name="orphannamespace",
            name="requested_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
