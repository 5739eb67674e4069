"""Run one reconciliation pass now and print what it found (the beat schedule runs it periodically)."""

from django.core.management.base import BaseCommand

from stores_app.provisioning import reconcile
from stores_app.tasks import schedule


class Command(BaseCommand):
    help = "Resume abandoned stores, fail ready stores whose namespace vanished, and report orphans."

    def handle(self, *args, **options):
        report, follow_ups = reconcile()
        for store_id, nxt in follow_ups:
            schedule(store_id, nxt)
        self.stdout.write(f"resumed={report.resumed} vanished={report.vanished} orphans={report.orphans}")
