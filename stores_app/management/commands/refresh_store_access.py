"""Brings the namespaces of stores made by an earlier version up to date: this installation's label and
both RoleBindings (the worker's and web's). Run once in a worker pod after upgrading; harmless twice."""

from django.conf import settings
from django.core.management.base import BaseCommand

from stores_app.kube import LABEL_INSTALLATION, LABEL_MANAGED_BY, MANAGED_BY, KubeError, KubeGateway
from stores_app.models import Status, Store


class Command(BaseCommand):
    help = "Label this installation's store namespaces and (re)create their RoleBindings for worker and web."

    def handle(self, *args, **options):
        gateway = KubeGateway()
        stores = Store.objects.live().exclude(status=Status.DELETING).exclude(namespace=None)
        failures = 0
        for store in stores.order_by("pk"):
            try:
                self.stdout.write(f"{store.namespace}: {self._refresh(gateway, store.namespace)}")
            except KubeError as exc:
                failures += 1
                self.stderr.write(f"{store.namespace}: {exc}")
        if failures:
            raise SystemExit(f"{failures} namespace(s) could not be brought up to date; run the command again.")

    def _refresh(self, gateway: KubeGateway, name: str) -> str:
        namespace = gateway.get_namespace(name)
        if namespace is None:
            return "not in the cluster (the reconciler reports the store)"
        labels = namespace.metadata.labels or {}
        if labels.get(LABEL_MANAGED_BY) != MANAGED_BY:
            return "not managed by the store orchestrator; left alone"
        owner = labels.get(LABEL_INSTALLATION)
        if owner not in (None, settings.ORCHESTRATOR_INSTALLATION_ID):
            return f"belongs to installation {owner}; left alone"
        claimed = owner is None
        if claimed:
            gateway.claim_namespace(name)
        gateway.ensure_role_binding(name)
        return "labelled and bound" if claimed else "bound"
