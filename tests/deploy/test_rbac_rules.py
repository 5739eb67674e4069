"""The chart's RBAC, as rendered: no wildcard, no built-in admin role, Secrets and workloads only
through the store role (bound per store namespace, never cluster-wide), web's identity reduced to
reading a Secret by name where it is bound, and every rule explained."""

from __future__ import annotations

import re

import pytest

from .conftest import CHART_DIR, LOCAL_VALUES, NAMESPACE, PROD_VALUES, env_of, named, of_kind, pod_specs

BUILT_IN_ROLES = {"cluster-admin", "admin", "edit", "view"}


@pytest.fixture(params=["local", "prod"], scope="module")
def objects(request, local_objects, prod_objects):
    return local_objects if request.param == "local" else prod_objects


def roles(objects):
    return of_kind(objects, "ClusterRole") + of_kind(objects, "Role")


def rules_granting(role, resource):
    return [r for r in role["rules"] if resource in r.get("resources", [])]


def test_no_wildcards_anywhere(objects):
    assert roles(objects)
    for role in roles(objects):
        for rule in role["rules"]:
            for field in ("verbs", "resources", "apiGroups", "resourceNames"):
                assert not [v for v in rule.get(field, []) if "*" in v], f"{role['metadata']['name']}: {rule}"
            assert "nonResourceURLs" not in rule


def test_no_binding_to_a_built_in_role(objects):
    bindings = of_kind(objects, "ClusterRoleBinding") + of_kind(objects, "RoleBinding")
    for binding in bindings:
        assert binding["roleRef"]["name"] not in BUILT_IN_ROLES


def test_cluster_wide_rights_are_only_namespaces_binding_and_volumes(objects):
    [binding] = of_kind(objects, "ClusterRoleBinding")
    role = named(objects, "ClusterRole", binding["roleRef"]["name"])
    granted = {(g, res): tuple(r["verbs"]) for r in role["rules"] for g in r["apiGroups"] for res in r["resources"]}
    assert granted == {
        ("", "namespaces"): ("get", "list", "watch", "create", "patch", "delete"),
        ("rbac.authorization.k8s.io", "rolebindings"): ("create",),
        ("rbac.authorization.k8s.io", "clusterroles"): ("bind",),
        ("", "persistentvolumes"): ("get", "list", "watch"),
    }
    [bind] = rules_granting(role, "clusterroles")
    assert bind["resourceNames"] == [
        named(objects, "ClusterRole", "-store-admin")["metadata"]["name"],
        named(objects, "ClusterRole", "-store-credentials")["metadata"]["name"],
    ]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "so-store-orchestrator", "namespace": NAMESPACE}]


@pytest.mark.parametrize("suffix", ["-store-admin", "-store-credentials"])
def test_per_store_roles_are_not_bound_by_the_chart(objects, suffix):
    role = named(objects, "ClusterRole", suffix)["metadata"]["name"]
    bindings = of_kind(objects, "ClusterRoleBinding") + of_kind(objects, "RoleBinding")
    assert not [b for b in bindings if b["roleRef"]["name"] == role]


def test_web_may_only_read_secrets_by_name(objects):
    role = named(objects, "ClusterRole", "-store-credentials")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    web = named(objects, "Deployment", "-web")["spec"]["template"]["spec"]
    assert web["serviceAccountName"] == "so-store-orchestrator-web"
    env = env_of(web["containers"][0])
    assert env["STORE_CREDENTIALS_CLUSTERROLE"]["value"] == role["metadata"]["name"]
    assert env["WEB_SERVICE_ACCOUNT"]["value"] == f"{NAMESPACE}:so-store-orchestrator-web"


def test_store_role_grants_what_store_charts_need_and_no_rbac(objects):
    role = named(objects, "ClusterRole", "-store-admin")
    resources = {res for r in role["rules"] for res in r["resources"]}
    assert {
        "secrets", "configmaps", "services", "persistentvolumeclaims", "serviceaccounts", "resourcequotas",
        "limitranges", "pods", "pods/log", "events", "deployments", "statefulsets", "replicasets", "jobs",
        "ingresses", "networkpolicies",
    } <= resources  # fmt: skip
    for rule in role["rules"]:
        assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"]), rule
        if "rbac.authorization.k8s.io" in rule["apiGroups"]:
            assert rule == {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["rolebindings"],
                "verbs": ["get", "delete"],
                "resourceNames": ["store-orchestrator", "store-orchestrator-web"],
            }
    for read_only in ("events", "replicasets", "pods/log"):
        for rule in rules_granting(role, read_only):
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule


def test_pods_are_told_the_role_and_their_identity(objects):
    store_role = named(objects, "ClusterRole", "-store-admin")["metadata"]["name"]
    account = named(objects, "ServiceAccount", "-store-orchestrator")["metadata"]["name"]
    for where, spec in pod_specs(objects).items():
        if not where.endswith(("-web", "-worker", "-beat")):
            continue
        if not where.endswith("-web"):
            assert spec["serviceAccountName"] == account
        env = env_of(spec["containers"][0])
        assert env["STORE_NAMESPACE_CLUSTERROLE"]["value"] == store_role
        assert env["ORCHESTRATOR_SERVICE_ACCOUNT"]["value"] == f"{NAMESPACE}:{account}"


def test_admission_policies_apply_to_the_orchestrator_only(objects):
    policies = of_kind(objects, "ValidatingAdmissionPolicy")
    bindings = {b["spec"]["policyName"]: b for b in of_kind(objects, "ValidatingAdmissionPolicyBinding")}
    assert policies and len(bindings) == len(policies)
    for policy in policies:
        [condition] = policy["spec"]["matchConditions"]
        assert condition["expression"] == (
            f"request.userInfo.username == 'system:serviceaccount:{NAMESPACE}:so-store-orchestrator'"
        )
        assert policy["spec"]["failurePolicy"] == "Fail"
        assert bindings[policy["metadata"]["name"]]["spec"]["validationActions"] == ["Deny"]


def test_every_rule_is_commented_in_the_template():
    lines = (CHART_DIR / "templates" / "rbac.yaml").read_text().splitlines()
    rules = [i for i, line in enumerate(lines) if re.match(r"\s*- apiGroups:", line)]
    assert len(rules) >= 10
    for i in rules:
        assert lines[i - 1].strip().startswith("#"), f"rbac.yaml line {i + 1} has no comment saying why"


def test_rbac_can_be_left_to_the_cluster_admin(render):
    objects = render(LOCAL_VALUES, PROD_VALUES, sets=["rbac.create=false"])
    assert not roles(objects)
    assert not of_kind(objects, "ClusterRoleBinding")
    assert not of_kind(objects, "ValidatingAdmissionPolicy")
