"""`manage.py refresh_store_access` brings namespaces of stores made by an earlier version up to date,
under the orchestrator's own token and admission policy: this installation's label where there was
none, both RoleBindings (worker and web), and nothing done to another installation's namespace."""

from __future__ import annotations

import io
import secrets

import pytest
from django.core.management import call_command
from kubernetes import client

from stores_app.kube import KubeGateway
from stores_app.models import Store

from .identity import INSTALLATION_LABEL
from .test_least_privilege import delete_as_admin

pytestmark = [pytest.mark.cluster, pytest.mark.django_db]


def _store(owner, slug: str) -> Store:
    store = Store.objects.create(owner=owner, name=slug, slug=slug, engine="medusa", status="ready")
    store.namespace = f"store-{secrets.token_hex(3)}-{slug}"  # unique: earlier runs' may still be terminating
    store.release_name = store.namespace
    store.save()
    return store


def test_older_store_namespaces_get_the_label_and_both_bindings(as_orchestrator, owner, kube_api_client):
    core, rbac = client.CoreV1Api(kube_api_client), client.RbacAuthorizationV1Api(kube_api_client)
    older, current, theirs = (_store(owner, slug) for slug in ("older-shop", "current-shop", "their-shop"))
    managed = {k: v for k, v in as_orchestrator.managed_labels.items() if k != INSTALLATION_LABEL}
    try:
        for store, labels in (
            (older, managed),  # made before the installation label existed
            (theirs, {**managed, INSTALLATION_LABEL: "someone-else"}),
        ):
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=store.namespace, labels=labels)))
        KubeGateway().ensure_namespace(current.namespace, current.pk, owner.pk, current.engine)  # no bindings yet

        out = io.StringIO()
        call_command("refresh_store_access", stdout=out)
        assert f"{older.namespace}: labelled and bound" in out.getvalue()
        assert f"{current.namespace}: bound" in out.getvalue()
        assert f"{theirs.namespace}: belongs to installation someone-else; left alone" in out.getvalue()

        for store in (older, current):
            labels = core.read_namespace(store.namespace).metadata.labels
            assert labels[INSTALLATION_LABEL] == as_orchestrator.installation_id
            names = {b.metadata.name for b in rbac.list_namespaced_role_binding(store.namespace).items}
            assert names == {"store-orchestrator", "store-orchestrator-web"}
        assert core.read_namespace(theirs.namespace).metadata.labels[INSTALLATION_LABEL] == "someone-else"
        assert rbac.list_namespaced_role_binding(theirs.namespace).items == []

        again = io.StringIO()
        call_command("refresh_store_access", stdout=again)  # harmless twice
        assert f"{older.namespace}: bound" in again.getvalue()
    finally:
        for store in (older, current, theirs):
            delete_as_admin(kube_api_client, store.namespace)
