"""Least privilege, proven against the real API server with a token of the chart's ServiceAccount:
it can provision and tear down a store (namespace, RoleBinding, credentials, `helm install` of the
real store chart, uninstall, namespace deletion), and it is refused everything else we can think
of that would hurt: Secrets outside store namespaces, cluster-wide bindings, other roles, foreign
namespaces, privileged pods."""

from __future__ import annotations

import secrets
import subprocess
import time

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.simcluster.helpers import namespace_gone

from .identity import REPO_ROOT

pytestmark = pytest.mark.cluster

# Keys each engine's chart reads from its existingSecret (docs/CONVENTIONS.md).
SECRET_KEYS = {
    "woocommerce": [
        "admin-password", "db-password", "db-root-password",
        "wordpress-auth-key", "wordpress-secure-auth-key", "wordpress-logged-in-key", "wordpress-nonce-key",
        "wordpress-auth-salt", "wordpress-secure-auth-salt", "wordpress-logged-in-salt", "wordpress-nonce-salt",
    ],
    "medusa": ["admin-password", "db-password", "redis-password", "jwt-secret", "cookie-secret"],
}  # fmt: skip


@pytest.fixture(scope="module")
def orchestrator(orchestrator_identity) -> client.ApiClient:
    return orchestrator_identity.api_client()


@pytest.fixture(scope="module")
def admin(kube_api_client) -> client.ApiClient:
    return kube_api_client


def forbidden(call, *args, **kwargs) -> ApiException:
    """Runs an API call that must be refused with 403, and returns the refusal."""
    with pytest.raises(ApiException) as refused:
        call(*args, **kwargs)
    assert refused.value.status == 403, refused.value.body
    return refused.value


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(1)


def create_store_namespace(orchestrator: client.ApiClient, identity, name: str, engine: str = "woocommerce") -> None:
    """What the orchestrator does first for a store: its labelled namespace and the RoleBinding."""
    labels = {**identity.managed_labels, "store-orchestrator.io/store-id": "1", "store-orchestrator.io/engine": engine}
    core = client.CoreV1Api(orchestrator)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
    client.RbacAuthorizationV1Api(orchestrator).create_namespaced_role_binding(
        name, role_binding(identity.store_cluster_role, identity.namespace, identity.service_account)
    )
    # The API server's RBAC cache learns of a new binding moments later, not always before the next
    # request; the orchestrator must likewise treat a 403 right after binding as temporary.
    wait_until(lambda: not _refused(core.list_namespaced_secret, name), 15, "the new RoleBinding to take effect")


def delete_as_admin(admin: client.ApiClient, namespace: str) -> None:
    try:
        client.CoreV1Api(admin).delete_namespace(namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise


def role_binding(role: str, sa_namespace: str, sa_name: str, name: str = "store-orchestrator") -> client.V1RoleBinding:
    return client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name=name),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name=sa_name, namespace=sa_namespace)],
    )


@pytest.fixture
def store_namespace(orchestrator, orchestrator_identity, admin):
    name = f"store-lp-{secrets.token_hex(3)}"
    try:
        create_store_namespace(orchestrator, orchestrator_identity, name)
        yield name
    finally:
        delete_as_admin(admin, name)


@pytest.fixture
def foreign_namespace(admin):
    """A namespace someone else made, without the managed-by label."""
    name = f"not-a-store-{secrets.token_hex(3)}"
    core = client.CoreV1Api(admin)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


# --- what provisioning needs: allowed ------------------------------------------------------------


@pytest.mark.parametrize("engine", ["woocommerce", "medusa"])
def test_provisions_and_tears_down_a_store_as_the_orchestrator(
    engine, orchestrator, orchestrator_identity, admin, tmp_path
):
    chart = REPO_ROOT / "charts" / engine
    assert (chart / "Chart.yaml").exists(), f"charts/{engine} is missing"
    core = client.CoreV1Api(orchestrator)
    namespace = f"store-lp-{secrets.token_hex(3)}"
    host = f"{namespace}.{orchestrator_identity.store_base_domain}"
    try:
        create_store_namespace(orchestrator, orchestrator_identity, namespace, engine)
        # The credentials Secret, before the chart that reads it.
        core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="store-credentials"),
                string_data={key: secrets.token_urlsafe(24) for key in SECRET_KEYS[engine]},
            ),
        )
        values = {
            "store": {"id": "1", "host": host},
            "existingSecret": "store-credentials",
            "admin": {"username": "admin", "email": f"admin@{host}"},
            "ingress": {"className": "nginx", "tls": {"enabled": False, "clusterIssuer": ""}},
        }
        (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))
        helm = [orchestrator_identity.env["HELM_BIN"], "--namespace", namespace]
        # --wait makes helm itself watch every kind of the release under this identity.
        install = subprocess.run(
            [*helm, "install", "store", str(chart), "--values", str(tmp_path / "values.yaml")]
            + ["--wait", "--wait-for-jobs", "--timeout", "5m"],
            env=orchestrator_identity.env,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert install.returncode == 0, install.stderr
        assert "forbidden" not in install.stderr.lower(), install.stderr

        # The readiness reads the orchestrator does itself, and its own binding read back.
        apps = client.AppsV1Api(orchestrator)
        assert apps.list_namespaced_deployment(namespace).items or apps.list_namespaced_stateful_set(namespace).items
        client.BatchV1Api(orchestrator).list_namespaced_job(namespace)
        core.list_namespaced_event(namespace)
        client.RbacAuthorizationV1Api(orchestrator).read_namespaced_role_binding("store-orchestrator", namespace)
        claims = {c.metadata.name for c in core.list_namespaced_persistent_volume_claim(namespace).items}

        history = subprocess.run([*helm, "history", "store"], env=orchestrator_identity.env, capture_output=True)
        assert history.returncode == 0, history.stderr
        uninstall = subprocess.run(
            [*helm, "uninstall", "store", "--wait", "--timeout", "3m"],
            env=orchestrator_identity.env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert uninstall.returncode == 0, uninstall.stderr

        core.delete_namespace(namespace)
        wait_until(lambda: namespace_gone(core, namespace), 180, f"namespace {namespace} to be deleted")

        def volumes_released() -> bool:
            pvs = core.list_persistent_volume().items
            return not [pv for pv in pvs if pv.spec.claim_ref and pv.spec.claim_ref.namespace == namespace]

        wait_until(volumes_released, 120, f"the volumes of {sorted(claims)} to be deleted")
    finally:
        delete_as_admin(admin, namespace)  # only does something when a step above failed


# --- everything else: refused --------------------------------------------------------------------


def test_cannot_read_secrets_outside_store_namespaces(orchestrator, orchestrator_identity, store_namespace):
    core = client.CoreV1Api(orchestrator)
    forbidden(core.list_namespaced_secret, "kube-system")
    forbidden(core.read_namespaced_secret, "anything", "kube-system")
    forbidden(core.list_secret_for_all_namespaces)
    # Not even in its own release namespace (where the chart's credentials live).
    forbidden(core.list_namespaced_secret, orchestrator_identity.namespace)
    # ...while in a store namespace it can.
    core.list_namespaced_secret(store_namespace)


def test_cannot_create_cluster_wide_bindings_or_roles(orchestrator, orchestrator_identity):
    rbac = client.RbacAuthorizationV1Api(orchestrator)
    binding = client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name=f"lp-escalation-{secrets.token_hex(3)}"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin"),
        subjects=[
            client.RbacV1Subject(
                kind="ServiceAccount",
                name=orchestrator_identity.service_account,
                namespace=orchestrator_identity.namespace,
            )
        ],
    )
    forbidden(rbac.create_cluster_role_binding, binding)
    binding.role_ref.name = orchestrator_identity.store_cluster_role
    forbidden(rbac.create_cluster_role_binding, binding)
    forbidden(rbac.create_cluster_role, client.V1ClusterRole(metadata=client.V1ObjectMeta(name="lp-role"), rules=[]))


@pytest.mark.parametrize("role", ["cluster-admin", "admin", "edit"])
def test_cannot_bind_any_other_cluster_role(role, orchestrator, orchestrator_identity, store_namespace):
    rbac = client.RbacAuthorizationV1Api(orchestrator)
    sa = (orchestrator_identity.namespace, orchestrator_identity.service_account)
    forbidden(rbac.create_namespaced_role_binding, store_namespace, role_binding(role, *sa, name="lp-other-role"))


def test_cannot_bind_the_store_role_outside_store_namespaces(orchestrator, orchestrator_identity, foreign_namespace):
    rbac = client.RbacAuthorizationV1Api(orchestrator)
    sa = (orchestrator_identity.namespace, orchestrator_identity.service_account)
    for namespace in ("kube-system", "default", foreign_namespace, orchestrator_identity.namespace):
        refusal = forbidden(
            rbac.create_namespaced_role_binding, namespace, role_binding(orchestrator_identity.store_cluster_role, *sa)
        )
        assert "only create RoleBindings in namespaces labelled" in refusal.body


def test_cannot_hand_the_store_role_to_another_identity(orchestrator, orchestrator_identity, store_namespace):
    rbac = client.RbacAuthorizationV1Api(orchestrator)
    binding = role_binding(orchestrator_identity.store_cluster_role, store_namespace, "default", name="lp-handout")
    refusal = forbidden(rbac.create_namespaced_role_binding, store_namespace, binding)
    assert "only the orchestrator's own ServiceAccount" in refusal.body


def test_cannot_delete_or_claim_namespaces_it_does_not_manage(
    orchestrator, orchestrator_identity, admin, foreign_namespace
):
    core = client.CoreV1Api(orchestrator)
    # kube-system and default are protected by the API server itself; any other namespace by our policy.
    for name in ("kube-system", "default"):
        forbidden(core.delete_namespace, name)
    refusal = forbidden(core.delete_namespace, foreign_namespace)
    assert "only change or delete namespaces labelled" in refusal.body
    # Labelling a foreign namespace as a store (to delete it next, or bind itself there) is refused too.
    claim = {"metadata": {"labels": orchestrator_identity.managed_labels}}
    forbidden(core.patch_namespace, "kube-system", claim)
    forbidden(core.patch_namespace, foreign_namespace, claim)
    assert client.CoreV1Api(admin).read_namespace(foreign_namespace).status.phase == "Active"


def test_namespaces_it_creates_must_be_managed_and_restricted(orchestrator, orchestrator_identity, store_namespace):
    core = client.CoreV1Api(orchestrator)
    name = f"store-lp-{secrets.token_hex(3)}"
    forbidden(core.create_namespace, client.V1Namespace(metadata=client.V1ObjectMeta(name=name)), dry_run="All")
    unrestricted = {**orchestrator_identity.managed_labels, "pod-security.kubernetes.io/enforce": "privileged"}
    body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=unrestricted))
    forbidden(core.create_namespace, body, dry_run="All")
    # Nor may it loosen Pod Security on a store namespace it owns.
    loosen = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}
    forbidden(core.patch_namespace, store_namespace, loosen)
    # Giving a namespace up (an adopted orphan) is allowed: relabel it, drop its own RoleBinding.
    # Afterwards it can neither delete the namespace nor read its Secrets.
    core.patch_namespace(store_namespace, {"metadata": {"labels": {"app.kubernetes.io/managed-by": "adopted"}}})
    client.RbacAuthorizationV1Api(orchestrator).delete_namespaced_role_binding("store-orchestrator", store_namespace)
    forbidden(core.delete_namespace, store_namespace)
    wait_until(lambda: _refused(core.list_namespaced_secret, store_namespace), 30, "its rights there to be gone")


def _refused(call, *args) -> bool:
    try:
        call(*args)
    except ApiException as exc:
        if exc.status == 403:
            return True
        raise
    return False


def test_cannot_run_privileged_pods_even_in_store_namespaces(orchestrator, store_namespace):
    core = client.CoreV1Api(orchestrator)
    # Pods are admitted only once the namespace's default ServiceAccount exists.
    wait_until(
        lambda: any(a.metadata.name == "default" for a in core.list_namespaced_service_account(store_namespace).items),
        60,
        "the default ServiceAccount",
    )
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="lp-privileged"),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="shell", image="busybox", security_context=client.V1SecurityContext(privileged=True)
                )
            ],
            host_pid=True,
        ),
    )
    refusal = forbidden(core.create_namespaced_pod, store_namespace, pod)
    assert "PodSecurity" in refusal.body
    forbidden(core.create_namespaced_pod, "default", pod)


def test_cannot_touch_workloads_outside_store_namespaces(orchestrator):
    apps = client.AppsV1Api(orchestrator)
    forbidden(apps.list_namespaced_deployment, "kube-system")
    forbidden(apps.list_deployment_for_all_namespaces)
    forbidden(client.CoreV1Api(orchestrator).list_node)


def test_orchestrator_code_refuses_to_delete_a_namespace_it_does_not_manage(
    settings, orchestrator_identity, foreign_namespace
):
    # Defence in depth: the app checks the label itself, before the API server would refuse.
    from stores_app.kube import KubeGateway, NotManaged, reset_client

    settings.KUBECONFIG = orchestrator_identity.kubeconfig
    reset_client()
    try:
        with pytest.raises(NotManaged):
            KubeGateway().delete_namespace(foreign_namespace)
    finally:
        reset_client()
