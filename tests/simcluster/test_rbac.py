"""RBAC with real ServiceAccount tokens (TokenRequest) and impersonation."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.cluster


def service_account_with_token(core: client.CoreV1Api, ns: str, name: str) -> str:
    core.create_namespaced_service_account(ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name)))
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600))
    token = core.create_namespaced_service_account_token(name, ns, request).status.token
    assert token and token.count(".") == 2, "TokenRequest must return a signed JWT"
    return token


def client_with_token(admin: client.ApiClient, token: str) -> client.ApiClient:
    conf = client.Configuration()
    conf.host = admin.configuration.host
    conf.ssl_ca_cert = admin.configuration.ssl_ca_cert
    conf.verify_ssl = True
    conf.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(conf)


@pytest.fixture
def rbac_namespace(kube_api_client, make_namespace):
    """A namespace with a ConfigMap, a Role that may read ConfigMaps, and that Role bound to SA 'reader'."""
    ns = make_namespace("sim-rbac")
    core = client.CoreV1Api(kube_api_client)
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings")))
    rbac = client.RbacAuthorizationV1Api(kube_api_client)
    rbac.create_namespaced_role(
        ns,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="configmap-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        ns,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io",
                kind="Role",
                name="configmap-reader",
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=ns)],
        ),
    )
    return ns


def test_service_account_without_rights_is_denied_where_authorized_one_succeeds(kube_api_client, rbac_namespace):
    ns = rbac_namespace
    core = client.CoreV1Api(kube_api_client)
    reader_token = service_account_with_token(core, ns, "reader")
    nobody_token = service_account_with_token(core, ns, "nobody")

    with client_with_token(kube_api_client, reader_token) as reader_client:
        reader = client.CoreV1Api(reader_client)
        names = [cm.metadata.name for cm in reader.list_namespaced_config_map(ns).items]
        assert "settings" in names
        # ... but only what the Role grants.
        with pytest.raises(ApiException) as denied:
            reader.delete_namespaced_config_map("settings", ns)
        assert denied.value.status == 403

    with client_with_token(kube_api_client, nobody_token) as nobody_client:
        with pytest.raises(ApiException) as denied:
            client.CoreV1Api(nobody_client).list_namespaced_config_map(ns)
        assert denied.value.status == 403

    with client_with_token(kube_api_client, "not-a-token") as anonymous:
        with pytest.raises(ApiException) as unauthenticated:
            client.CoreV1Api(anonymous).list_namespaced_config_map(ns)
        assert unauthenticated.value.status == 401


def test_impersonation_applies_the_impersonated_users_rights(kube_cluster, rbac_namespace):
    ns = rbac_namespace

    def can_i(user: str) -> str:
        result = kube_cluster.run(
            kube_cluster.kubectl,
            "auth",
            "can-i",
            "list",
            "configmaps",
            "-n",
            ns,
            "--as",
            user,
            check=False,
        )
        return result.stdout.strip()

    assert can_i(f"system:serviceaccount:{ns}:reader") == "yes"
    assert can_i(f"system:serviceaccount:{ns}:nobody") == "no"
    denied = kube_cluster.run(
        kube_cluster.kubectl,
        "get",
        "configmaps",
        "-n",
        ns,
        "--as",
        f"system:serviceaccount:{ns}:nobody",
        check=False,
    )
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
