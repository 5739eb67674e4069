"""A small gateway over the official Kubernetes client: the cluster objects a store owns.

Helm installs the chart; this module does what must exist before it (namespace,
RoleBinding, credentials Secret), reads readiness, and tears namespaces down.
It refuses to delete any namespace the orchestrator does not manage, because RBAC
cannot restrict namespace deletion by label.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
from dataclasses import dataclass, field

from django.conf import settings
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

# The client imports its API classes lazily, on first use: about a second of CPU per process (several
# under load). Touch them here, so a Celery worker pays once before it forks its pool, not in the first
# task of every pool process (and a gunicorn worker at boot, not in a request).
_APIS = (client.CoreV1Api, client.AppsV1Api, client.BatchV1Api, client.RbacAuthorizationV1Api)

log = logging.getLogger(__name__)

MANAGED_BY = "store-orchestrator"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_STORE_ID = "store-orchestrator.io/store-id"
LABEL_OWNER_ID = "store-orchestrator.io/owner-id"
LABEL_ENGINE = "store-orchestrator.io/engine"
# Which orchestrator installation a namespace belongs to (settings.ORCHESTRATOR_INSTALLATION_ID): two
# installations sharing a cluster, or one restored from another's database, never take each other's.
LABEL_INSTALLATION = "store-orchestrator.io/installation"
MANAGED_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
ROLE_BINDING_NAME = "store-orchestrator"
WEB_ROLE_BINDING_NAME = "store-orchestrator-web"  # lets the web process read the store's credentials

# Keys each engine's chart reads from its existingSecret (see docs/CONVENTIONS.md).
_WP_SALTS = [
    f"wordpress-{k}"
    for k in (
        "auth-key",
        "secure-auth-key",
        "logged-in-key",
        "nonce-key",
        "auth-salt",
        "secure-auth-salt",
        "logged-in-salt",
        "nonce-salt",
    )
]
SECRET_KEYS = {
    "woocommerce": ["admin-password", "db-password", "db-root-password", *_WP_SALTS],
    "medusa": ["admin-password", "db-password", "redis-password", "jwt-secret", "cookie-secret"],
}


class KubeError(Exception):
    """A cluster call failed; `temporary` says whether retrying can help."""

    def __init__(self, message: str, temporary: bool):
        super().__init__(message)
        self.temporary = temporary


class NamespaceConflict(KubeError):
    def __init__(self, message: str):
        super().__init__(message, temporary=False)


class NotManaged(KubeError):
    def __init__(self, message: str):
        super().__init__(message, temporary=False)


def _classify(exc: Exception, doing: str) -> KubeError:
    if isinstance(exc, ApiException):
        # 403 counts as temporary (bounded by the attempt cap): right after the store's RoleBinding is
        # created the API server's authorizer may not know it yet; a real lack of rights still ends
        # in a failed store whose reason names the 403.
        temporary = exc.status in (None, 0, 403, 409, 429, 500, 502, 503, 504)
        reason = exc.reason or "error"
        return KubeError(f"Kubernetes refused to {doing}: {exc.status} {reason}", temporary=temporary)
    # Connection refused, timeouts, DNS: the API server may come back.
    return KubeError(f"Could not reach the Kubernetes API to {doing}: {type(exc).__name__}", temporary=True)


@dataclass
class Readiness:
    ready: bool
    waiting: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.failed:
            return "failed: " + ", ".join(self.failed)
        if self.waiting:
            return "waiting for " + ", ".join(self.waiting)
        return "all workloads ready"


_local = threading.local()


def _api_client() -> client.ApiClient:
    # One client per thread (and per forked worker process, since each child builds its own).
    api = getattr(_local, "api", None)
    if api is None:
        cfg = client.Configuration()
        if settings.KUBECONFIG:
            config.load_kube_config(config_file=settings.KUBECONFIG, client_configuration=cfg)
        else:
            config.load_incluster_config(client_configuration=cfg)
        cfg.retries = 1
        api = client.ApiClient(cfg)
        _local.api = api
    return api


def reset_client() -> None:
    """Forget this thread's API client (after KUBECONFIG changed)."""
    _local.api = None


class KubeGateway:
    def __init__(self) -> None:
        api = _api_client()
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self._timeout = 20

    def _call(self, doing: str, fn, *args, tolerate: tuple[int, ...] = (), **kwargs):
        """Call the API; an error whose status is in `tolerate` returns None, any other is classified."""
        try:
            return fn(*args, _request_timeout=self._timeout, **kwargs)
        except ApiException as exc:
            if exc.status in tolerate:
                return None
            raise _classify(exc, doing) from exc
        except Exception as exc:
            raise _classify(exc, doing) from exc

    # --- namespaces -------------------------------------------------------------
    def ensure_namespace(self, name: str, store_id: int, owner_id: int, engine: str) -> bool:
        """Create the store's namespace, or adopt it if it is already this store's. Returns True if created."""
        labels = {
            LABEL_MANAGED_BY: MANAGED_BY,
            LABEL_INSTALLATION: settings.ORCHESTRATOR_INSTALLATION_ID,
            LABEL_STORE_ID: str(store_id),
            LABEL_OWNER_ID: str(owner_id),
            LABEL_ENGINE: engine,
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/warn": "restricted",
        }
        existing = self.get_namespace(name)
        if existing is not None:
            self._adopt(existing, store_id, owner_id)
            return False
        body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
        if self._call(f"create namespace {name}", self.core.create_namespace, body, tolerate=(409,)) is None:
            # Created by a concurrent run of the same step: adopt it on the next pass.
            raise KubeError(f"Namespace {name} appeared concurrently; re-checking.", temporary=True)
        return True

    def _adopt(self, existing, store_id: int, owner_id: int) -> None:
        """Take an existing namespace only if every identity label says it is this store's, of this installation.

        A namespace from before the installation label existed (no such label) is this installation's
        own earlier work: it is adopted and labelled.
        """
        name = existing.metadata.name
        have = existing.metadata.labels or {}
        installation = have.get(LABEL_INSTALLATION)
        if (
            have.get(LABEL_MANAGED_BY) != MANAGED_BY
            or have.get(LABEL_STORE_ID) != str(store_id)
            or have.get(LABEL_OWNER_ID) != str(owner_id)
            or installation not in (None, settings.ORCHESTRATOR_INSTALLATION_ID)
        ):
            raise NamespaceConflict(
                f"Namespace {name} already exists and does not belong to this store of this orchestrator "
                "installation; an operator must remove or rename it."
            )
        if existing.status and existing.status.phase == "Terminating":
            raise KubeError(f"Namespace {name} is still being deleted; waiting for it to go.", temporary=True)
        if installation is None:
            self.claim_namespace(name)

    def get_namespace(self, name: str):
        return self._call(f"read namespace {name}", self.core.read_namespace, name, tolerate=(404,))

    def list_managed_namespaces(self) -> dict[str, dict[str, str]]:
        """Namespaces managed by this installation (or by it before the installation label existed)."""
        items = self._call("list namespaces", self.core.list_namespace, label_selector=MANAGED_SELECTOR).items
        return {
            ns.metadata.name: dict(ns.metadata.labels or {})
            for ns in items
            if (ns.metadata.labels or {}).get(LABEL_INSTALLATION, settings.ORCHESTRATOR_INSTALLATION_ID)
            == settings.ORCHESTRATOR_INSTALLATION_ID
        }

    def delete_namespace(self, name: str) -> None:
        """Delete a store namespace. Refuses namespaces without our managed-by label."""
        ns = self.get_namespace(name)
        if ns is None:
            return
        if (ns.metadata.labels or {}).get(LABEL_MANAGED_BY) != MANAGED_BY:
            raise NotManaged(f"Refusing to delete namespace {name}: it is not managed by the store orchestrator.")
        self._call(
            f"delete namespace {name}",
            self.core.delete_namespace,
            name,
            propagation_policy="Foreground",
            tolerate=(404,),
        )

    def claim_namespace(self, name: str) -> None:
        """Put this installation's label on a store namespace made before the label existed (the admission
        policy allows that once, and never another value)."""
        patch = {"metadata": {"labels": {LABEL_INSTALLATION: settings.ORCHESTRATOR_INSTALLATION_ID}}}
        self._call(f"label namespace {name}", self.core.patch_namespace, name, patch)

    def release_namespace(self, name: str) -> None:
        """Hand a namespace back to the operator: drop our rights in it (web's first, while we still may),
        then our managed-by label."""
        for binding in (WEB_ROLE_BINDING_NAME, ROLE_BINDING_NAME):
            self._call(
                f"remove the role binding {binding} in {name}",
                self.rbac.delete_namespaced_role_binding,
                binding,
                name,
                tolerate=(404,),
            )
        patch = {"metadata": {"labels": {LABEL_MANAGED_BY: "adopted-by-operator"}}}
        self._call(f"label namespace {name}", self.core.patch_namespace, name, patch)

    def namespace_volumes(self, namespace: str) -> tuple[list[str], list[str]]:
        """PersistentVolumes of this namespace's claims: (still going, kept by a Retain policy).

        A Retain volume whose claim is gone stays Released for ever by the cluster operator's choice;
        the orchestrator neither deletes it nor waits for it.
        """
        # The list is of the whole cluster (a PersistentVolume cannot be selected by its claim's namespace),
        # two volumes per store; read as plain JSON, which took 8 ms of CPU against the client's models' 20
        # with 227 volumes (the fleet benchmark's clusters have up to 2 per store).
        response = self._call("list persistent volumes", self.core.list_persistent_volume, _preload_content=False)
        try:
            pvs = json.loads(response.data)["items"] or []
        except (ValueError, KeyError, TypeError) as exc:
            raise KubeError(f"list persistent volumes: unreadable answer ({exc})", temporary=True) from exc
        finally:
            response.release_conn()
        going: list[str] = []
        kept: list[str] = []
        for pv in pvs:
            spec = pv.get("spec") or {}
            if (spec.get("claimRef") or {}).get("namespace") != namespace:
                continue
            released = (pv.get("status") or {}).get("phase") in ("Released", "Failed")
            retained = spec.get("persistentVolumeReclaimPolicy") == "Retain" and released
            (kept if retained else going).append(pv["metadata"]["name"])
        return going, kept

    # --- access -----------------------------------------------------------------
    def ensure_role_binding(self, namespace: str) -> None:
        """Grant the orchestrator's ServiceAccount the store ClusterRole inside this namespace only, and
        the web's ServiceAccount the credentials-reader role there (what the credentials view needs)."""
        bindings = (
            (ROLE_BINDING_NAME, settings.STORE_NAMESPACE_CLUSTERROLE, settings.ORCHESTRATOR_SERVICE_ACCOUNT),
            (WEB_ROLE_BINDING_NAME, settings.STORE_CREDENTIALS_CLUSTERROLE, settings.WEB_SERVICE_ACCOUNT),
        )
        for name, role, account in bindings:
            if role:
                self._bind(namespace, name, role, account)

    def _bind(self, namespace: str, name: str, role: str, account: str) -> None:
        sa_namespace, _, sa_name = account.partition(":")
        body = client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=name, labels={LABEL_MANAGED_BY: MANAGED_BY}),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name=sa_name, namespace=sa_namespace)],
        )
        self._call(
            f"bind {role} in {namespace}",
            self.rbac.create_namespaced_role_binding,
            namespace,
            body,
            tolerate=(409,),
        )

    # --- credentials ------------------------------------------------------------
    def ensure_credentials(self, namespace: str, name: str, engine: str, labels: dict[str, str]) -> bool:
        """Create the store's credentials Secret with fresh random values; never regenerate existing ones.

        Returns True if the Secret was created. Values exist only here and in the cluster.
        """
        keys = SECRET_KEYS[engine]
        current = self._call(f"read Secret {name}", self.core.read_namespaced_secret, name, namespace, tolerate=(404,))
        if current is not None:
            missing = [k for k in keys if k not in (current.data or {})]
            if missing:
                patch = {"stringData": {k: secrets.token_urlsafe(32) for k in missing}}
                self._call(f"complete Secret {name}", self.core.patch_namespaced_secret, name, namespace, patch)
            return False
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name=name, labels=labels),
            type="Opaque",
            string_data={k: secrets.token_urlsafe(32) for k in keys},
        )
        created = self._call(
            f"create Secret {name}", self.core.create_namespaced_secret, namespace, body, tolerate=(409,)
        )
        return created is not None

    def read_secret_value(self, namespace: str, name: str, key: str) -> str | None:
        secret = self._call(f"read Secret {name}", self.core.read_namespaced_secret, name, namespace, tolerate=(404,))
        raw = (secret.data or {}).get(key) if secret is not None else None
        return base64.b64decode(raw).decode() if raw else None

    # --- readiness --------------------------------------------------------------
    def delete_finished_jobs(self, namespace: str, release: str) -> list[str]:
        """Delete the release's Jobs that have finished (their pods go with them); returns their names.

        Before a rollback: the charts name their setup Job per revision, and a rollback re-applies an older
        revision's Job. Where that Job is still there (an upgrade that failed before helm removed it), helm
        would patch it, which Kubernetes refuses for a Job ("spec.selector: Required value"), and the rollback
        would fail. Deleted first, it is created again and runs again (setup steps are idempotent)."""
        selector = f"app.kubernetes.io/instance={release}"
        doing = f"list jobs in {namespace}"
        jobs = self._call(doing, self.batch.list_namespaced_job, namespace, label_selector=selector).items
        deleted = []
        for job in jobs:
            if job.status and (job.status.succeeded or job.status.failed) and not job.status.active:
                name = job.metadata.name
                self._call(
                    f"delete job {name}",
                    self.batch.delete_namespaced_job,
                    name,
                    namespace,
                    propagation_policy="Background",
                    tolerate=(404,),
                )
                deleted.append(name)
        return deleted

    def readiness(self, namespace: str, release: str) -> Readiness:
        """Every Deployment/StatefulSet of the release available and every Job it installed complete."""
        selector = f"app.kubernetes.io/instance={release}"
        doing = f"read workloads in {namespace}"
        deployments = self._call(doing, self.apps.list_namespaced_deployment, namespace, label_selector=selector).items
        statefulsets = self._call(
            doing, self.apps.list_namespaced_stateful_set, namespace, label_selector=selector
        ).items
        jobs = self._call(doing, self.batch.list_namespaced_job, namespace, label_selector=selector).items
        # A store's CronJobs start Jobs of their own (background work): not part of being ready.
        jobs = [j for j in jobs if not any(ref.kind == "CronJob" for ref in j.metadata.owner_references or [])]
        waiting: list[str] = []
        failed: list[str] = []
        # As `kubectl rollout status` judges them, so an upgraded release counts only once its new pods
        # serve: every replica of the current spec updated and available, none of the old one left.
        for d in deployments:
            want = d.spec.replicas if d.spec.replicas is not None else 1
            st = d.status
            updated = st.updated_replicas or 0
            if (
                (st.observed_generation or 0) < d.metadata.generation
                or updated < want
                or (st.replicas or 0) > updated
                or (st.available_replicas or 0) < want
            ):
                waiting.append(f"deployment/{d.metadata.name}")
        for s in statefulsets:
            want = s.spec.replicas if s.spec.replicas is not None else 1
            st = s.status
            if (
                (st.observed_generation or 0) < s.metadata.generation
                or (st.ready_replicas or 0) < want
                or (st.updated_replicas or 0) < want
            ):
                waiting.append(f"statefulset/{s.metadata.name}")
        for j in jobs:
            conditions = {c.type: c.status for c in (j.status.conditions or [])}
            if conditions.get("Failed") == "True":
                failed.append(f"job/{j.metadata.name}")
            elif conditions.get("Complete") != "True":
                waiting.append(f"job/{j.metadata.name}")
        if not (deployments or statefulsets):
            waiting.append("the release's workloads to appear")
        return Readiness(ready=not waiting and not failed, waiting=waiting, failed=failed)

    def replace_stuck_statefulset_pods(self, namespace: str, release: str) -> list[str]:
        """Delete the release's StatefulSet pods that are on an older revision than their set's and not ready.

        After a rollback, a pod of the failed revision that never became ready (unschedulable, crash
        looping) blocks its StatefulSet: the controller waits for that pod to be ready before it replaces
        anything (Kubernetes' "forced rollback" caveat). Deleting it lets the controller create it again
        from the reverted template; its volume claim, and so its data, stays. Returns the pods deleted.
        """
        doing = f"read workloads in {namespace}"
        selector = f"app.kubernetes.io/instance={release}"
        sets = self._call(doing, self.apps.list_namespaced_stateful_set, namespace, label_selector=selector).items
        deleted: list[str] = []
        for sts in sets:
            wanted = sts.status.update_revision
            if not wanted or (sts.status.observed_generation or 0) < sts.metadata.generation:
                continue  # the controller has not taken in the reverted template yet
            match = ",".join(f"{k}={v}" for k, v in (sts.spec.selector.match_labels or {}).items())
            for pod in self._call(doing, self.core.list_namespaced_pod, namespace, label_selector=match).items:
                labels = pod.metadata.labels or {}
                ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
                if labels.get("controller-revision-hash") == wanted or ready or pod.metadata.deletion_timestamp:
                    continue
                name = pod.metadata.name
                self._call(f"delete pod {name}", self.core.delete_namespaced_pod, name, namespace, tolerate=(404,))
                deleted.append(name)
        return deleted
