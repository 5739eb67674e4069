"""Acting as the orchestrator on a cluster: the chart's ServiceAccounts, RBAC and admission policies
applied from `helm template`, and kubeconfigs authenticated with tokens of those ServiceAccounts.

A pytest plugin module, loaded for the whole suite by tests/conftest.py, so every test shares one
identity per session: the real Celery workers of the tests run under it (``identity.env`` holds
``KUBECONFIG`` and the settings the chart sets on its pods), as in production.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "deploy" / "helm" / "store-orchestrator"
# The templates that make up the orchestrator's identity and rights; nothing else of the chart.
IDENTITY_TEMPLATES = ("templates/serviceaccount.yaml", "templates/rbac.yaml", "templates/admission-policy.yaml")
MANAGED_LABELS = {
    "app.kubernetes.io/managed-by": "store-orchestrator",
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
INSTALLATION_LABEL = "store-orchestrator.io/installation"


def kubernetes_version() -> str:
    """The simulated cluster's pinned version, so `helm template` renders for the cluster we test on."""
    for line in (REPO_ROOT / "tools" / "simcluster" / "versions.env").read_text().splitlines():
        if line.startswith("KUBERNETES_VERSION="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError("KUBERNETES_VERSION missing from tools/simcluster/versions.env")


@dataclasses.dataclass(frozen=True)
class OrchestratorIdentity:
    """The orchestrator's ServiceAccount on the cluster, usable as a path (``os.fspath``) to its kubeconfig."""

    kubeconfig: str  # kubeconfig authenticating as the ServiceAccount (bearer token from TokenRequest)
    namespace: str  # where the ServiceAccount lives (the orchestrator's release namespace)
    service_account: str
    store_cluster_role: str  # the ClusterRole to bind in each store namespace
    release: str  # the helm release name the identity was rendered with
    env: dict[str, str]  # subprocess environment: the cluster's, with KUBECONFIG and the chart's settings set
    installation_id: str  # ORCHESTRATOR_INSTALLATION_ID the admission policy was rendered with
    store_base_domain: str  # stores.baseDomain the Ingress policy was rendered with
    web_service_account: str  # web's own ServiceAccount (reads store credentials only)
    credentials_cluster_role: str  # the ClusterRole bound to web in each store namespace
    web_kubeconfig: str  # kubeconfig authenticating as web's ServiceAccount

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    @property
    def orchestrator_service_account(self) -> str:
        """The value of ORCHESTRATOR_SERVICE_ACCOUNT ("namespace:name")."""
        return f"{self.namespace}:{self.service_account}"

    @property
    def managed_labels(self) -> dict[str, str]:
        """The labels a store namespace of this installation carries (what the policy demands)."""
        return {**MANAGED_LABELS, INSTALLATION_LABEL: self.installation_id}

    def settings(self) -> dict[str, str]:
        """The settings the chart gives the orchestrator's pods, for in-process code (``settings.X = …``)."""
        keys = (
            "STORE_NAMESPACE_CLUSTERROLE",
            "ORCHESTRATOR_SERVICE_ACCOUNT",
            "STORE_CREDENTIALS_CLUSTERROLE",
            "WEB_SERVICE_ACCOUNT",
            "ORCHESTRATOR_INSTALLATION_ID",
            "STORE_BASE_DOMAIN",
        )
        return {key: self.env[key] for key in keys}

    def __fspath__(self) -> str:
        return self.kubeconfig

    def api_client(self):
        """A kubernetes ApiClient authenticated as the orchestrator."""
        from kubernetes import config

        return config.new_client_from_config(config_file=self.kubeconfig)


def render_identity(
    helm: str, release: str, namespace: str, env: dict[str, str] | None = None, sets: tuple[str, ...] = ()
) -> str:
    show_only: list[str] = []
    for template in IDENTITY_TEMPLATES:
        show_only += ["--show-only", template]
    for item in sets:
        show_only += ["--set", item]
    result = subprocess.run(
        [helm, "template", release, str(CHART_DIR), "--namespace", namespace, "--kube-version", kubernetes_version()]
        + show_only,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"helm template failed:\n{result.stderr}")
    return result.stdout


def _run(cluster, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(list(args), env=cluster.env, input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def _token_kubeconfig(cluster, token: str, path: Path) -> None:
    """A kubeconfig with the admin kubeconfig's server and CA, and the ServiceAccount's token as user."""
    admin = json.loads(_run(cluster, cluster.kubectl, "config", "view", "--raw", "--minify", "--flatten", "-o", "json"))
    server = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": server}],
        "users": [{"name": "store-orchestrator", "user": {"token": token}}],
        "contexts": [{"name": "store-orchestrator", "context": {"cluster": "cluster", "user": "store-orchestrator"}}],
        "current-context": "store-orchestrator",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


def _wait_for_admission_policy(identity: OrchestratorIdentity, timeout: float = 60) -> None:
    """A new ValidatingAdmissionPolicy takes effect a moment after it is created: wait until a
    dry-run namespace creation without the managed-by label is refused (RBAC alone would allow it)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(identity.api_client())
    body = client.V1Namespace(metadata=client.V1ObjectMeta(name=f"policy-probe-{secrets.token_hex(3)}"))
    deadline = time.monotonic() + timeout
    while True:
        try:
            core.create_namespace(body, dry_run="All")
        except ApiException as exc:
            if exc.status == 403 and "managed-by" in (exc.body or ""):
                return
            if exc.status != 403:  # e.g. the token not accepted yet
                raise
        if time.monotonic() > deadline:
            raise RuntimeError("the admission policy did not take effect within 60 s")
        time.sleep(0.5)


def _mint_kubeconfig(cluster, service_account: str, namespace: str, path: Path) -> str:
    token = _run(
        cluster, cluster.kubectl, "create", "token", service_account, "--namespace", namespace, "--duration", "12h"
    ).strip()
    _token_kubeconfig(cluster, token, path)
    return str(path)


def _named(docs: list[dict], kind: str, suffix: str) -> str:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix))["metadata"]["name"]


def apply_identity(
    cluster, directory: Path, release: str | None = None, store_base_domain: str = "stores.test"
) -> tuple[OrchestratorIdentity, str]:
    """Create a namespace, apply the chart's identity templates there (rendered for `store_base_domain`
    and a fresh installation id), and mint tokens. Returns the identity and the applied manifests
    (for :func:`remove_identity`)."""
    suffix = secrets.token_hex(3)
    release = release or f"so-id-{suffix}"
    namespace = f"store-orchestrator-{suffix}"
    installation_id = f"test-{suffix}"
    sets = (f"stores.baseDomain={store_base_domain}", f"installationId={installation_id}")
    manifests = render_identity(cluster.helm, release, namespace, cluster.env, sets)
    docs = [doc for doc in yaml.safe_load_all(manifests) if doc]
    service_account = _named(docs, "ServiceAccount", "-store-orchestrator")
    web_service_account = _named(docs, "ServiceAccount", "-web")
    store_role = _named(docs, "ClusterRole", "-store-admin")
    credentials_role = _named(docs, "ClusterRole", "-store-credentials")
    _run(cluster, cluster.kubectl, "create", "namespace", namespace)
    _run(cluster, cluster.kubectl, "apply", "--namespace", namespace, "-f", "-", stdin=manifests)
    kubeconfig = _mint_kubeconfig(cluster, service_account, namespace, directory / "orchestrator.kubeconfig")
    web_kubeconfig = _mint_kubeconfig(cluster, web_service_account, namespace, directory / "web.kubeconfig")
    env = dict(cluster.env)
    env.update(
        KUBECONFIG=kubeconfig,
        STORE_NAMESPACE_CLUSTERROLE=store_role,
        ORCHESTRATOR_SERVICE_ACCOUNT=f"{namespace}:{service_account}",
        STORE_CREDENTIALS_CLUSTERROLE=credentials_role,
        WEB_SERVICE_ACCOUNT=f"{namespace}:{web_service_account}",
        ORCHESTRATOR_INSTALLATION_ID=installation_id,
        STORE_BASE_DOMAIN=store_base_domain,
        HELM_BIN=cluster.helm,
    )
    identity = OrchestratorIdentity(
        kubeconfig=kubeconfig,
        namespace=namespace,
        service_account=service_account,
        store_cluster_role=store_role,
        release=release,
        env=env,
        installation_id=installation_id,
        store_base_domain=store_base_domain,
        web_service_account=web_service_account,
        credentials_cluster_role=credentials_role,
        web_kubeconfig=web_kubeconfig,
    )
    if any(d["kind"] == "ValidatingAdmissionPolicy" for d in docs):
        _wait_for_admission_policy(identity)
    return identity, manifests


def remove_identity(cluster, identity: OrchestratorIdentity, manifests: str) -> None:
    subprocess.run(
        [cluster.kubectl, "delete", "--namespace", identity.namespace, "--ignore-not-found", "--wait=false", "-f", "-"],
        env=cluster.env,
        input=manifests,
        capture_output=True,
        text=True,
        check=False,
    )
    subprocess.run(
        [cluster.kubectl, "delete", "namespace", identity.namespace, "--ignore-not-found", "--wait=false"],
        env=cluster.env,
        capture_output=True,
        check=False,
    )


@pytest.fixture(scope="session")
def orchestrator_identity(kube_cluster, tmp_path_factory) -> Iterator[OrchestratorIdentity]:
    """The orchestrator's ServiceAccount (and web's) with exactly the chart's RBAC and admission
    policies, in a fresh namespace (unique release name and installation id, so parallel sessions do
    not share cluster-scoped objects), rendered for the tests' STORE_BASE_DOMAIN.

    ``os.fspath(identity)`` / ``identity.kubeconfig`` is a kubeconfig authenticated as it."""
    from django.conf import settings

    directory = tmp_path_factory.mktemp("orchestrator-identity")
    identity, manifests = apply_identity(kube_cluster, directory, store_base_domain=settings.STORE_BASE_DOMAIN)
    yield identity
    remove_identity(kube_cluster, identity, manifests)
