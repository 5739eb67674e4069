"""Runs one container of a rendered chart with podman the way a kubelet would run it, so a stand-in
image is tried under exactly what the chart asks of it: user and group, read-only root filesystem,
no capabilities, no privilege escalation, the chart's command, args and environment (with the
kubelet's $(VAR) expansion), its volume mount points and its exec probes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.charts import REPO_ROOT

PODMAN = REPO_ROOT / "tools" / "simcluster" / "images" / "podman.sh"
BUILD = REPO_ROOT / "tools" / "simcluster" / "images" / "build.sh"


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """podman with the images' private store and settings (tools/simcluster/images/podman.sh)."""
    result = subprocess.run([str(PODMAN), *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])} … failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def build_images(*names: str) -> dict[str, str]:
    """Image references by name, built or reused by build.sh (its cache makes this quick when warm)."""
    result = subprocess.run([str(BUILD), *names], capture_output=True, text=True, timeout=1500, check=False)
    assert result.returncode == 0, f"build.sh {' '.join(names)} failed:\n{result.stderr[-4000:]}"
    return {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()}


def workload_container(objects: list[dict], workload: str, container: str) -> tuple[dict, dict]:
    """The pod spec and container spec of a Deployment or StatefulSet whose name ends with `workload`."""
    for obj in objects:
        if obj["kind"] in {"Deployment", "StatefulSet"} and obj["metadata"]["name"].endswith(workload):
            pod = obj["spec"]["template"]["spec"]
            for spec in pod["containers"]:
                if spec["name"] == container:
                    return pod, spec
    raise AssertionError(f"no container {container!r} in a workload named *{workload}")


def expand(text: str, env: dict[str, str]) -> str:
    """The kubelet's $(VAR) expansion: known names are replaced, $$ escapes, unknown ones stay."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        text,
    )


@dataclass
class ChartContainer:
    """One container of a chart, run by podman. Volumes are host directories under `volumes_dir`
    that outlive a restart, as a PVC or an emptyDir outlives a container restart."""

    name: str
    image: str
    pod: dict
    spec: dict
    secrets: dict[str, str]
    volumes_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for var in self.spec.get("env", []):
            if "value" in var:
                self.env[var["name"]] = expand(var["value"], self.env)
            else:
                self.env[var["name"]] = self.secrets[var["valueFrom"]["secretKeyRef"]["key"]]

    # --- what the kubelet would ask of the runtime ---------------------------------------------

    def _user(self) -> str:
        context = {**self.pod.get("securityContext", {}), **self.spec.get("securityContext", {})}
        assert "runAsUser" in context, f"{self.name}: the chart sets no runAsUser"
        return f"{context['runAsUser']}:{context.get('runAsGroup', context['runAsUser'])}"

    def _security_flags(self) -> list[str]:
        container = self.spec.get("securityContext", {})
        flags = ["--user", self._user()]
        fs_group = self.pod.get("securityContext", {}).get("fsGroup")
        if fs_group is not None:  # the kubelet adds it to the process's groups
            flags += ["--group-add", str(fs_group)]
        if container.get("readOnlyRootFilesystem"):
            # podman would add tmpfs mounts of its own on /run and /tmp; a kubelet adds none.
            flags += ["--read-only", "--read-only-tmpfs=false"]
        if "ALL" in container.get("capabilities", {}).get("drop", []):
            flags += ["--cap-drop=ALL"]
        if container.get("allowPrivilegeEscalation") is False:
            flags += ["--security-opt=no-new-privileges"]
        return flags

    def _volume_flags(self) -> list[str]:
        """emptyDirs are world-writable directories; with an fsGroup, volumes belong to that group
        (setgid), and a claim's root is not world-writable, as on a typical provisioner."""
        fs_group = self.pod.get("securityContext", {}).get("fsGroup")
        empty_dirs = {volume["name"] for volume in self.pod.get("volumes", []) if "emptyDir" in volume}
        flags = []
        for mount in self.spec.get("volumeMounts", []):
            host = self.volumes_dir / mount["name"]
            if not host.exists():
                host.mkdir(parents=True)
                host.chmod(0o777 if mount["name"] in empty_dirs else 0o755)
                if fs_group is not None:
                    os.chown(host, 0, fs_group)
                    host.chmod(host.stat().st_mode | 0o2070)
            flags += ["-v", f"{host}:{mount['mountPath']}"]
        return flags

    def _command_flags(self) -> list[str]:
        command = [expand(part, self.env) for part in self.spec.get("command", [])]
        args = [expand(part, self.env) for part in self.spec.get("args", [])]
        entrypoint = ["--entrypoint", json.dumps(command)] if command else []
        return [*entrypoint, self.image, *args]

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> ChartContainer:
        env_flags = [flag for name, value in self.env.items() for flag in ("-e", f"{name}={value}")]
        podman(
            "run",
            "-d",
            "--name",
            self.name,
            *self._security_flags(),
            *self._volume_flags(),
            *env_flags,
            *self._command_flags(),
        )
        return self

    def restart(self) -> None:
        """Stops and starts the container again (same volumes), as a kubelet restarts a container."""
        podman("stop", "-t", "30", self.name)
        podman("start", self.name)

    def remove(self) -> None:
        podman("rm", "-f", "-t", "0", self.name, check=False)

    @property
    def ip(self) -> str:
        result = podman("inspect", self.name, "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
        assert result.stdout.strip(), f"{self.name} has no address (not running?)\n{self.logs()}"
        return result.stdout.strip()

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return (result.stdout + result.stderr)[-6000:]

    def exec(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Runs a command inside, as the container's user, with its environment (as an exec probe does)."""
        return podman("exec", self.name, *command, check=False, timeout=timeout)

    def probe_passes(self, kind: str) -> bool:
        probe = self.spec[f"{kind}Probe"]
        if "exec" in probe:
            return self.exec(*probe["exec"]["command"], timeout=probe.get("timeoutSeconds", 1) + 10).returncode == 0
        if "tcpSocket" in probe:
            port = probe["tcpSocket"]["port"]
            if isinstance(port, str):  # a named port
                port = next(p["containerPort"] for p in self.spec["ports"] if p.get("name") == port)
            return client(self.image, "bash", "-c", f"echo >/dev/tcp/{self.ip}/{port}").returncode == 0
        raise AssertionError(f"{self.name}: {kind} probe of a kind this harness does not run: {probe}")

    def wait_until(self, kind: str, seconds: float = 180) -> float:
        """Seconds until the probe passed; fails with the container's log if it never does."""
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            if self.probe_passes(kind):
                return time.monotonic() - started
            state = podman("inspect", self.name, "--format", "{{.State.Status}}").stdout.strip()
            assert state == "running", f"{self.name} is {state} before its {kind} probe passed:\n{self.logs()}"
            time.sleep(1)
        raise AssertionError(f"{self.name}: {kind} probe did not pass within {seconds} s:\n{self.logs()}")


def client(
    image: str, *command: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """A command in a throwaway container on the same network: a client on another host."""
    env_flags = [flag for name, value in (env or {}).items() for flag in ("-e", f"{name}={value}")]
    return podman(
        "run",
        "--rm",
        "--user",
        "65534:65534",
        "--read-only",
        *env_flags,
        "--entrypoint",
        command[0],
        image,
        *command[1:],
        check=False,
        timeout=timeout,
    )
