"""Every pod of the chart meets Pod Security "restricted" and runs with limits, probes and a
disruption budget, whatever the values file (the install test proves admission on a real API server)."""

from __future__ import annotations

import pytest

from .conftest import CHART_DIR, LOCAL_VALUES, PROD_VALUES, containers, named, of_kind, pod_specs

VALUE_SETS = {
    "local": [LOCAL_VALUES],
    "prod": [LOCAL_VALUES, PROD_VALUES],
    **{path.name: [path] for path in sorted((CHART_DIR / "ci").glob("*-values.yaml"))},
}


@pytest.fixture(params=sorted(VALUE_SETS), scope="module")
def objects(request, render):
    return render(*VALUE_SETS[request.param])


def test_every_container_is_locked_down(objects):
    specs = pod_specs(objects)
    assert specs
    for where, spec in specs.items():
        pod = spec.get("securityContext", {})
        assert pod.get("runAsNonRoot") is True, where
        assert pod.get("runAsUser", 0) > 0, where
        assert pod.get("seccompProfile") == {"type": "RuntimeDefault"}, where
        assert "automountServiceAccountToken" in spec, f"{where}: token mounting must be a decision"
        for container in containers(spec):
            ctx = container["securityContext"]
            name = f"{where}/{container['name']}"
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["capabilities"] == {"drop": ["ALL"]}, name
            assert not ctx.get("privileged"), name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{name} {kind}"


def test_only_web_and_worker_get_an_api_token_each_their_own(objects):
    mounted = {w: spec for w, spec in pod_specs(objects).items() if spec["automountServiceAccountToken"]}
    assert {w.rsplit("-", 1)[1] for w in mounted} == {"web", "worker"}
    accounts = {w.rsplit("-", 1)[1]: spec["serviceAccountName"] for w, spec in mounted.items()}
    assert accounts["web"] == accounts["worker"] + "-web"  # two identities, web's its own
    for account in of_kind(objects, "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


def test_writable_tmp_for_the_orchestrator(objects):
    for where, spec in pod_specs(objects).items():
        if where.endswith(("-postgres", "-redis")):
            continue
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], where


def test_probes_use_the_health_endpoints(objects):
    web = named(objects, "Deployment", "-web")["spec"]["template"]["spec"]["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz/live"
    assert web["readinessProbe"]["httpGet"]["path"] == "/healthz/ready"
    assert web["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    worker = named(objects, "Deployment", "-worker")["spec"]["template"]["spec"]["containers"][0]
    for probe in ("livenessProbe", "readinessProbe"):
        # PID 1 of the container is the worker: its hung helm children are found from there.
        assert worker[probe]["exec"]["command"] == ["python", "manage.py", "worker_health", "--worker-pid", "1"]


def test_processes_run_the_documented_commands(objects):
    def command(suffix):
        return named(objects, "Deployment", suffix)["spec"]["template"]["spec"]["containers"][0]["command"]

    assert command("-web")[:4] == ["gunicorn", "orchestrator.wsgi:application", "--bind", "0.0.0.0:8000"]
    assert command("-worker")[:4] == ["celery", "-A", "orchestrator", "worker"]
    assert command("-beat") == [
        "celery", "-A", "orchestrator", "beat", "--loglevel=INFO", "--schedule", "/tmp/celerybeat-schedule",
    ]  # fmt: skip


def test_disruption_budgets_for_web_and_worker(objects):
    budgets = {b["metadata"]["name"].rsplit("-", 1)[1]: b for b in of_kind(objects, "PodDisruptionBudget")}
    assert set(budgets) == {"web", "worker"}
    for component, budget in budgets.items():
        # maxUnavailable never blocks a drain of a single replica, unlike minAvailable: 1.
        assert budget["spec"]["maxUnavailable"] == 1
        deployment = named(objects, "Deployment", f"-{component}")
        assert budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
