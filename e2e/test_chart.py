"""The Helm chart (``deploy/helm/gpu-dra-driver``), rendered by the real Helm, on a real API server.

Covers:
- every value in ``values.yaml`` carries a comment;
- MPS daemons run in pods of their own by default (``--mps-runner=kubernetes``, the plugin's own
  image unless ``mpsDaemons.image`` names one, a Role for Deployments in the release namespace
  only); ``mpsDaemons.runner: local`` renders neither;
- ``helm lint`` is clean (no warning, no error), with the defaults and with fake GPUs;
- ``deploy/manifests/gpu-dra-driver.yaml`` is the chart rendered with its defaults, as
  ``deploy/helm/render-manifests.sh`` makes it today;
- bad values stop the render with a message naming the value (``templates/validation.yaml``),
  every fake GPU model the fake backend knows renders, and maxSurge 1 is refused at install
  (``helm install --dry-run=server``) when a node runs a kubelet older than 1.33;
- every object the chart renders is accepted by the API server in a server-side dry-run apply
  (``?dryRun=All``), for the defaults and for the variants (real GPUs, a second DaemonSet per
  sharing strategy, no controller so the chart owns the DeviceClasses, a certificate you bring),
  and so are the committed manifests with their placeholder certificate;
- the ValidatingAdmissionPolicy, applied for real with the RBAC objects, confines the plugin:
  with a token bound to a pod on node A (TokenRequest, as a pod's projected token is), the API
  server puts node A in the user's extra info; that identity creates and deletes node A's
  slices, is refused node B's (create and delete) with the policy's message, is refused
  everything by the policy with a token bound to no pod, and cannot delete DeviceClasses (RBAC).
  (Whether the policy type-checks cleanly is reported in its status by a kube-controller-manager
  controller that the local control plane does not run; the requests above exercise every
  expression instead);
- least privilege, asked of the RBAC authorizer (SubjectAccessReview) for both identities: what
  each process calls is allowed (the plugin's MPS Deployments in its namespace included);
  neighbours of it (secrets, pods, creating slices from the controller, leases or Deployments in
  other namespaces, updating Deployments, deleting DeviceClasses) are not.

Cluster-scoped objects a test applies (ClusterRoles, bindings, the policy) are deleted in a
``finally``; namespaced ones go with the scenario's namespace.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import pathlib
import re
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client

from controller import rest
from dra_driver.backends.fake import catalog, specs
from e2e.conftest import Scenario, local
from e2e.harness import kube, objects
from kubeletplugin import mpsdeployments

# A cold build of helm (modules and compile) takes minutes; the tests themselves take seconds.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

REPO = pathlib.Path(__file__).resolve().parents[1]
HELM_DIR = REPO / "deploy" / "helm"
CHART = HELM_DIR / "gpu-dra-driver"
MANIFEST = REPO / "deploy" / "manifests" / "gpu-dra-driver.yaml"
KUBE_VERSION = "1.37.0"
FAKE_VALUES: dict[str, Any] = {
    "gpus": "fake:2xA100-40GB",
    "image": {"repository": "registry.example/gpu-dra-driver", "tag": "test"},
}
RBAC_KINDS = {
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}
SLICES = objects.SLICES

Obj = kube.Obj


# -- helm ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The helm binary built from its Go module (cached), with its own empty config dirs."""
    built = subprocess.run(
        ["bash", str(HELM_DIR / "build-helm.sh")], stdout=subprocess.PIPE, text=True, check=True
    )
    home = tmp_path_factory.mktemp("helm-home")
    return Helm(pathlib.Path(built.stdout.strip().splitlines()[-1]), home)


class Helm:
    """The helm CLI, run with config dirs of its own so that it never reads the user's."""

    def __init__(self, binary: pathlib.Path, home: pathlib.Path) -> None:
        self.binary = binary
        self.env = {
            **os.environ,
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }

    def run(
        self, *args: str, values: dict[str, Any] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """helm `args` (plus ``--values`` from `values`, as JSON, which is YAML); never raises."""
        extra = ["--values", "-"] if values is not None else []
        return subprocess.run(
            [str(self.binary), *args, *extra],
            input=json.dumps(values) if values is not None else None,
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
            timeout=120,
        )

    def template(
        self, values: dict[str, Any], *, namespace: str, release: str = "gpu-dra-driver"
    ) -> list[Obj]:
        result = self.run(
            "template", release, str(CHART), "--namespace", namespace,
            "--kube-version", KUBE_VERSION, values=values,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def template_error(self, values: dict[str, Any]) -> str:
        result = self.run(
            "template", "gpu-dra-driver", str(CHART), "--kube-version", KUBE_VERSION, values=values
        )
        assert result.returncode != 0, f"rendered, but should not have: {values}"
        return " ".join(result.stderr.split())


def _merged(*layers: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(result.get(key), dict):
                result[key] = _merged(result[key], value)
            else:
                result[key] = value
    return result


# -- applying rendered objects ------------------------------------------------------------------


class Applier:
    """Server-side apply of arbitrary objects, their REST paths found by API discovery."""

    def __init__(self, client: kube.Kube) -> None:
        self.client = client
        self._resources: dict[str, list[Obj]] = {}

    def path(self, obj: Obj) -> str:
        api_version, kind = obj["apiVersion"], obj["kind"]
        base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
        if base not in self._resources:
            self._resources[base] = self.client.get(base)["resources"]
        (resource,) = [
            r for r in self._resources[base] if r["kind"] == kind and "/" not in r["name"]
        ]
        metadata = obj["metadata"]
        if resource["namespaced"]:
            assert metadata.get("namespace"), f"{kind} {metadata['name']} names no namespace"
            base = f"{base}/namespaces/{metadata['namespace']}"
        else:
            assert "namespace" not in metadata, f"cluster-scoped {kind} with a namespace"
        return f"{base}/{resource['name']}/{metadata['name']}"

    def apply(self, obj: Obj, *, dry_run: bool) -> Obj:
        query = "fieldManager=chart-test&force=true" + ("&dryRun=All" if dry_run else "")
        return self.client.request(
            "PATCH", f"{self.path(obj)}?{query}", obj, content_type="application/apply-patch+yaml"
        )

    def delete(self, obj: Obj) -> None:
        self.client.delete(self.path(obj))


def _kinds(docs: list[Obj]) -> list[str]:
    return sorted(doc["kind"] for doc in docs)


# -- the chart as files -------------------------------------------------------------------------


def test_helm_lint_is_clean(helm: Helm) -> None:
    for values in ({}, FAKE_VALUES):
        result = helm.run("lint", str(CHART), values=values)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "[WARNING]" not in output, output
        assert "[ERROR]" not in output, output
        assert "0 chart(s) failed" in output, output


# Values whose contents are Kubernetes objects (resources, tolerations, ...), described as a whole.
_PASSED_THROUGH = {
    "resources",
    "tolerations",
    "gpuNodeSelectorTerms",
    "affinity",
    "nodeSelector",
    "podAnnotations",
    "podLabels",
    "annotations",
    "namespaceSelector",
}


def test_every_value_carries_a_comment() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    parents: list[tuple[int, str]] = []
    undocumented = []
    for number, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z][A-Za-z0-9]*):(.*)$", line)
        if match is None:
            continue
        indent, key, rest = len(match[1]), match[2], match[3]
        while parents and parents[-1][0] >= indent:
            parents.pop()
        path = [name for _, name in parents]
        parents.append((indent, key))
        if _PASSED_THROUGH & set(path):
            continue
        above = lines[number - 1].strip() if number else ""
        if not (above.startswith("#") or "#" in rest):
            undocumented.append(".".join([*path, key]))
    assert undocumented == [], "values without a comment above them"


def test_committed_manifests_are_the_chart_rendered_now(helm: Helm, tmp_path: pathlib.Path) -> None:
    fresh = tmp_path / "gpu-dra-driver.yaml"
    subprocess.run(
        ["bash", str(HELM_DIR / "render-manifests.sh"), str(fresh)],
        check=True,
        capture_output=True,
        env=helm.env,
    )
    assert fresh.read_text() == MANIFEST.read_text(), (
        "deploy/manifests/gpu-dra-driver.yaml is stale: run deploy/helm/render-manifests.sh"
    )
    docs = [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]
    assert "BEGIN" not in MANIFEST.read_text(), "no generated key or certificate in git"
    assert {"Namespace", "DaemonSet", "Deployment", "ValidatingAdmissionPolicy"} <= set(
        _kinds(docs)
    )


def test_the_plugin_daemonset_follows_the_kubelet_rules(helm: Helm) -> None:
    docs = helm.template(FAKE_VALUES, namespace="gpu")
    (daemonset,) = [d for d in docs if d["kind"] == "DaemonSet"]
    assert daemonset["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = daemonset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "--pod-uid=$(POD_UID)" in container["args"]
    library = "/var/lib/kubelet/plugins/gpu.dra.dev/lib/libgpuquota.so"
    assert f"--preload-library={library}" in container["args"]
    (installer,) = pod["initContainers"]
    assert installer["command"][-1] == library.rsplit("/", 1)[0], "installed where it is injected"
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {
        "NODE_NAME": "spec.nodeName",
        "POD_UID": "metadata.uid",
        "POD_NAMESPACE": "metadata.namespace",
    }
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    host = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert mounts == host, "host paths are mounted at the same paths inside"
    assert host == {
        "plugin-dir": "/var/lib/kubelet/plugins/gpu.dra.dev",
        "registry-dir": "/var/lib/kubelet/plugins_registry",
        "cdi-dir": "/var/run/cdi",
    }
    assert container["securityContext"] == {"privileged": True, "runAsUser": 0, "runAsGroup": 0}
    assert container["livenessProbe"]["grpc"] == {"port": 51515, "service": ""}
    assert container["readinessProbe"]["grpc"] == {"port": 51515, "service": "readiness"}
    assert pod["priorityClassName"] == "system-node-critical"
    assert "affinity" not in pod, "fake GPUs run on every node"


def _mps_setup(docs: list[Obj]) -> tuple[list[str], list[Obj]]:
    """The plugin's MPS flags and the rules of its namespaced Role for the daemon pods."""
    (daemonset,) = [d for d in docs if d["kind"] == "DaemonSet"]
    args = daemonset["spec"]["template"]["spec"]["containers"][0]["args"]
    roles = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-mps")]
    return [a for a in args if a.startswith("--mps-")], [r for role in roles for r in role["rules"]]


def test_mps_daemons_run_in_pods_of_their_own_by_default(helm: Helm) -> None:
    docs = helm.template(FAKE_VALUES, namespace="gpu")
    flags, rules = _mps_setup(docs)
    assert flags == [
        "--mps-runner=kubernetes",
        "--mps-ready-timeout=30",
        "--mps-image=registry.example/gpu-dra-driver:test",
        "--mps-image-pull-policy=IfNotPresent",
    ]
    assert rules == [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments"],
            "verbs": ["get", "list", "create", "delete"],
        }
    ]
    (binding,) = [
        d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"].endswith("-mps")
    ]
    assert binding["metadata"]["namespace"] == "gpu"
    assert binding["subjects"][0]["name"] == "gpu-dra-driver-kubelet-plugin"


@pytest.mark.parametrize(
    ("mps", "flags", "role"),
    [
        pytest.param(
            {"image": "registry.example/mps:1", "readyTimeout": 75},
            [
                "--mps-runner=kubernetes",
                "--mps-ready-timeout=75",
                "--mps-image=registry.example/mps:1",
                "--mps-image-pull-policy=IfNotPresent",
            ],
            True,
            id="own-image",
        ),
        pytest.param(
            {"runner": "local"}, ["--mps-runner=local", "--mps-ready-timeout=30"], False, id="local"
        ),
    ],
)
def test_mps_daemon_settings_render(
    helm: Helm, mps: dict[str, str], flags: list[str], role: bool
) -> None:
    docs = helm.template(_merged(FAKE_VALUES, {"mpsDaemons": mps}), namespace="gpu")
    rendered, rules = _mps_setup(docs)
    assert rendered == flags
    assert bool(rules) is role


@pytest.mark.parametrize(
    ("mps", "policy"),
    [
        pytest.param({}, True, id="default"),
        pytest.param({"nodePolicy": False}, False, id="off"),
        pytest.param({"runner": "local"}, False, id="local"),
    ],
)
def test_the_mps_daemon_policy_renders_with_the_kubernetes_runner(
    helm: Helm, mps: dict[str, Any], policy: bool
) -> None:
    docs = helm.template(_merged(FAKE_VALUES, {"mpsDaemons": mps}), namespace="gpu")
    names = {
        doc["metadata"]["name"]
        for doc in docs
        if doc["kind"] in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
    }
    assert ("gpu-dra-driver-mps-daemons" in names) is policy
    assert "gpu-dra-driver-resourceslices" in names


def test_mps_daemon_pods_pull_as_the_plugin_does(helm: Helm) -> None:
    """A private registry: the plugin's pull secrets and policy go to the daemon pods too."""
    private = {
        "image": {"pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "regcred"}, {"name": "mirror-creds"}],
    }
    docs = helm.template(_merged(FAKE_VALUES, private), namespace="gpu")
    flags, _ = _mps_setup(docs)
    assert flags[3:] == [
        "--mps-image-pull-policy=Always",
        "--mps-image-pull-secret=regcred",
        "--mps-image-pull-secret=mirror-creds",
    ]
    (daemonset,) = [d for d in docs if d["kind"] == "DaemonSet"]
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == private["imagePullSecrets"]


def test_a_node_label_picks_the_sharing_strategy_per_node(helm: Helm) -> None:
    values = _merged(FAKE_VALUES, {"sharing": {"nodeLabel": "gpu.dra.dev/sharing-strategy"}})
    docs = helm.template(values, namespace="gpu")
    daemonsets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "DaemonSet"}
    assert sorted(daemonsets) == [
        "gpu-dra-driver-kubelet-plugin",
        "gpu-dra-driver-kubelet-plugin-timeslicing",
    ]
    seen = {}
    for name, daemonset in daemonsets.items():
        pod = daemonset["spec"]["template"]["spec"]
        (strategy,) = [a for a in pod["containers"][0]["args"] if a.startswith("--sharing")]
        terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        (term,) = terms["nodeSelectorTerms"]
        seen[name] = (strategy, term["matchExpressions"])
    label = "gpu.dra.dev/sharing-strategy"
    assert seen == {
        "gpu-dra-driver-kubelet-plugin": (
            "--sharing-strategy=mps",
            [{"key": label, "operator": "NotIn", "values": ["timeslicing"]}],
        ),
        "gpu-dra-driver-kubelet-plugin-timeslicing": (
            "--sharing-strategy=timeslicing",
            [{"key": label, "operator": "In", "values": ["timeslicing"]}],
        ),
    }


def test_real_gpus_run_only_on_gpu_nodes_and_find_the_host_driver(helm: Helm) -> None:
    values = {"sharing": {"nodeLabel": "strategy"}}
    docs = helm.template(values, namespace="gpu")
    daemonset = next(d for d in docs if d["kind"] == "DaemonSet")
    pod = daemonset["spec"]["template"]["spec"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    keys = [[e["key"] for e in t["matchExpressions"]] for t in terms["nodeSelectorTerms"]]
    assert keys == [
        ["feature.node.kubernetes.io/pci-10de.present", "strategy"],
        ["nvidia.com/gpu.present", "strategy"],
    ], "each GPU-node term gets the strategy's expression ANDed in"
    container = pod["containers"][0]
    assert container["command"][:2] == ["/bin/sh", "-c"]
    assert container["command"][3] == "gpu-dra-kubeletplugin"
    assert {"name": "driver-root", "hostPath": {"path": "/", "type": "Directory"}} in pod["volumes"]
    assert {"name": "dev-root", "hostPath": {"path": "/dev", "type": "Directory"}} in pod["volumes"]
    args = container["args"]
    assert "--driver-root=/" in args
    assert "--driver-root-ctr-path=/driver-root" in args
    assert "--dev-root-ctr-path=/host-dev-root" in args
    assert not [a for a in args if a.startswith("--dev-root=")], "auto: the plugin decides"
    assert "--driver-capabilities=compute,utility" in args
    assert "--nvidia-cdi-hook=/var/lib/kubelet/plugins/gpu.dra.dev/bin/nvidia-cdi-hook" in args
    assert "--nvidia-cdi-hook-source=/usr/local/bin/nvidia-cdi-hook" in args


@pytest.mark.parametrize(
    ("plugin", "flags"),
    [
        pytest.param({}, ["--checkpoint-layout=v2"], id="defaults"),
        pytest.param(
            {"checkpointLayout": "v1", "health": {"ignoreXids": [74, 79]}},
            ["--checkpoint-layout=v1", "--health-ignore-xids=74,79"],
            id="v1-and-xids",
        ),
        pytest.param(
            {"health": {"watch": False, "ignoreXids": [74]}},
            ["--checkpoint-layout=v2", "--no-health-watch"],
            id="no-health-watch",
        ),
    ],
)
def test_checkpoint_layout_and_health_flags_render(
    helm: Helm, plugin: dict[str, Any], flags: list[str]
) -> None:
    docs = helm.template(_merged(FAKE_VALUES, {"kubeletPlugin": plugin}), namespace="gpu")
    pod = next(d for d in docs if d["kind"] == "DaemonSet")
    args = pod["spec"]["template"]["spec"]["containers"][0]["args"]
    chosen = ("--checkpoint-layout", "--health-ignore-xids", "--no-health-watch")
    assert [arg for arg in args if arg.startswith(chosen)] == flags


def test_a_gpu_operator_driver_root_and_dev_root(helm: Helm) -> None:
    values = {
        "hostPaths": {"driverRoot": "/run/nvidia/driver", "devRoot": "/run/nvidia/driver"},
        "driverCapabilities": ["compute", "utility", "video"],
    }
    pod = next(d for d in helm.template(values, namespace="gpu") if d["kind"] == "DaemonSet")
    spec = pod["spec"]["template"]["spec"]
    args = spec["containers"][0]["args"]
    assert "--driver-root=/run/nvidia/driver" in args
    assert "--dev-root=/run/nvidia/driver" in args
    assert "--driver-capabilities=compute,utility,video" in args
    dev = {"name": "dev-root", "hostPath": {"path": "/run/nvidia/driver/dev", "type": "Directory"}}
    assert dev in spec["volumes"]


def test_without_the_controller_the_chart_owns_the_device_classes(helm: Helm) -> None:
    values = {"controller": {"enabled": False}, "webhook": {"enabled": False}}
    docs = helm.template(_merged(FAKE_VALUES, values), namespace="gpu")
    rendered = [d for d in docs if d["kind"] == "DeviceClass"]
    for doc in rendered:
        del doc["metadata"]["labels"]
    assert rendered == list(yaml.safe_load_all((REPO / "deploy/deviceclasses.yaml").read_text()))
    assert not [d for d in docs if d["kind"] in ("Deployment", "ValidatingWebhookConfiguration")]
    with_controller = helm.template(FAKE_VALUES, namespace="gpu")
    assert "DeviceClass" not in _kinds(with_controller), "one owner: the controller applies them"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({"mode": "fast"}, 'mode "fast": use auto', id="mode"),
        pytest.param({"gpus": "cuda"}, 'gpus "cuda": use `nvml`', id="gpus"),
        pytest.param({"gpus": "fake:A100"}, '"A100" is not <count>x<model>', id="fake-format"),
        pytest.param({"gpus": "fake:2xV100"}, 'unknown fake GPU model "V100"', id="fake-model"),
        pytest.param({"gpus": "fake:40xL4,30xT4"}, "70 fake GPUs, at most 64", id="fake-count"),
        pytest.param({"driverName": "GPU_Driver"}, "is not a DNS subdomain", id="driver-name"),
        pytest.param({"sharing": {"strategy": "mig"}}, "use mps or timeslicing", id="strategy"),
        pytest.param(
            {"sharing": {"nodeLabel": "a label"}}, "is not a label key", id="strategy-label"
        ),
        pytest.param(
            {"mode": "full", "compatShares": 4}, "has no effect with mode full", id="compat-shares"
        ),
        pytest.param({"compatShares": -1}, "compatShares -1: a whole number", id="shares-sign"),
        pytest.param({"dynamicMig": "no"}, "dynamicMig no: true or false", id="toggle"),
        pytest.param({"logging": {"level": "loud"}}, "use debug, info, warning", id="log-level"),
        pytest.param(
            {"hostPaths": {"cdiDir": "var/run/cdi"}}, "hostPaths.cdiDir", id="relative-path"
        ),
        pytest.param(
            {"hostPaths": {"devRoot": "dev"}}, "hostPaths.devRoot", id="relative-dev-root"
        ),
        pytest.param(
            {"driverCapabilities": ["compute", "gaming"]}, '"gaming" is none of', id="capability"
        ),
        pytest.param({"driverCapabilities": "compute"}, "a list, e.g.", id="capabilities-list"),
        pytest.param(
            {"kubeletPlugin": {"updateStrategy": {"maxSurge": 0, "maxUnavailable": 0}}},
            "use 1/0 (seamless, kubelets >= 1.33) or 0/1",
            id="no-progress",
        ),
        pytest.param(
            {"kubeletPlugin": {"updateStrategy": {"maxSurge": 1, "maxUnavailable": 1}}},
            "with maxSurge 1 keep maxUnavailable 0",
            id="surge-and-unavailable",
        ),
        pytest.param({"kubeletPlugin": {"metricsPort": 51515}}, "are both 51515", id="same-ports"),
        pytest.param(
            {"kubeletPlugin": {"checkpointLayout": "v3"}}, "use v1 or v2", id="checkpoint-layout"
        ),
        pytest.param(
            {"kubeletPlugin": {"health": {"ignoreXids": [74, "x"]}}},
            "x is not an XID",
            id="ignore-xids",
        ),
        pytest.param(
            {"kubeletPlugin": {"health": {"watch": "no"}}}, "health.watch no", id="health-watch"
        ),
        pytest.param(
            {"controller": {"leaderElection": {"enabled": False}}},
            "every replica would lead",
            id="replicas-without-election",
        ),
        pytest.param(
            {"controller": {"leaderElection": {"renewDeadline": 20}}},
            "needs leaseDuration > renewDeadline > 1.2 x retryPeriod",
            id="election-timing",
        ),
        pytest.param(
            {"controller": {"enabled": False}},
            "webhook.enabled needs controller.enabled",
            id="webhook-without-controller",
        ),
        pytest.param(
            {"webhook": {"certificate": {"source": "secret"}}},
            "webhook.enabled with webhook.certificate.source=secret but no "
            "webhook.certificate.secretName",
            id="webhook-without-cert",
        ),
        pytest.param(
            {"webhook": {"certificate": {"source": "secret", "secretName": "tls"}}},
            "needs the CA that signed it",
            id="webhook-without-ca",
        ),
        pytest.param(
            {"webhook": {"certificate": {"source": "vault"}}}, 'source "vault"', id="cert-source"
        ),
        pytest.param(
            {"webhook": {"failurePolicy": "Sometimes"}}, "Ignore or Fail", id="failure-policy"
        ),
        pytest.param(
            {"deviceClasses": {"extendedResourceName": "kubernetes.io/gpu"}},
            "outside kubernetes.io",
            id="extended-resource",
        ),
        pytest.param({"image": {"repository": ""}}, "image.repository is empty", id="image"),
        pytest.param(
            {"mpsDaemons": {"runner": "docker"}}, 'mpsDaemons.runner "docker"', id="mps-runner"
        ),
    ],
)
def test_bad_values_stop_the_render_with_a_message(
    helm: Helm, values: dict[str, Any], message: str
) -> None:
    error = helm.template_error(values)
    assert "gpu-dra-driver: " in error
    assert message in error


def test_every_fake_model_the_backend_knows_renders(helm: Helm) -> None:
    names = [*catalog.MODELS, *specs.known_models().split(", ")]
    spec = "fake:" + ",".join(f"1x{name.lower()}" for name in dict.fromkeys(names))
    docs = helm.template({"gpus": spec}, namespace="gpu")
    args = next(d for d in docs if d["kind"] == "DaemonSet")["spec"]["template"]["spec"]
    assert f"--gpus={spec}" in args["containers"][0]["args"]


# -- on the API server --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"gpus": "nvml"}, id="real-gpus"),
        pytest.param(
            {"sharing": {"nodeLabel": "gpu.dra.dev/sharing-strategy", "strategy": "timeslicing"}},
            id="strategy-per-node",
        ),
        pytest.param(
            {"controller": {"enabled": False}, "webhook": {"enabled": False}},
            id="no-controller",
        ),
        pytest.param(
            {
                "mode": "compat",
                "compatShares": 4,
                "dynamicMig": False,
                "deviceClasses": {"extendedResourceName": "gpu.dra.dev/gpu"},
                "controller": {"replicas": 1, "leaderElection": {"enabled": False}},
                "webhook": {
                    "failurePolicy": "Fail",
                    "namespaceSelector": {"matchLabels": {"gpu": "yes"}},
                    "certificate": {
                        "source": "secret",
                        "secretName": "my-tls",
                        "annotations": {"cert-manager.io/inject-ca-from": "gpu/webhook"},
                    },
                },
                "metrics": {"service": {"enabled": False}},
                "kubeletPlugin": {"updateStrategy": {"maxSurge": 0, "maxUnavailable": 1}},
            },
            id="compat-and-own-certificate",
        ),
    ],
)
def test_every_rendered_object_passes_a_server_side_dry_run(
    scenario: Scenario, helm: Helm, variant: dict[str, Any]
) -> None:
    docs = helm.template(
        _merged(FAKE_VALUES, variant), namespace=scenario.namespace, release="gpu-dra-driver"
    )
    applier = Applier(scenario.client)
    for doc in docs:
        stored = applier.apply(doc, dry_run=True)
        assert stored["kind"] == doc["kind"]
        assert stored["metadata"]["name"] == doc["metadata"]["name"]
    kinds = set(_kinds(docs))
    assert {"DaemonSet", "ServiceAccount", "ClusterRole", "ValidatingAdmissionPolicy"} <= kinds
    if variant.get("controller", {}).get("enabled", True):
        assert {"Deployment", "ValidatingWebhookConfiguration", "Service"} <= kinds
    # Nothing was written.
    assert scenario.client.items(f"/apis/apps/v1/namespaces/{scenario.namespace}/daemonsets") == []


def test_the_committed_manifests_pass_a_server_side_dry_run(scenario: Scenario) -> None:
    """Placeholders included (namespaced objects moved to the scenario's namespace)."""
    applier = Applier(scenario.client)
    docs = [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]
    for doc in docs:
        if doc["kind"] == "Namespace":
            continue
        if "namespace" in doc["metadata"]:
            doc["metadata"]["namespace"] = scenario.namespace
        applier.apply(doc, dry_run=True)


def test_max_surge_is_refused_at_install_while_a_kubelet_is_older_than_1_33(
    scenario: Scenario, helm: Helm
) -> None:
    old = f"{scenario.namespace}-old-kubelet"
    objects.create_node(scenario.client, old)
    scenario.nodes.append(old)
    scenario.client.request(
        "PATCH",
        f"/api/v1/nodes/{old}/status",
        {"status": {"nodeInfo": {"kubeletVersion": "v1.32.4"}}},
        content_type="application/merge-patch+json",
    )
    install = (
        "install", "gpu-dra-driver", str(CHART), "--dry-run=server",
        "--namespace", scenario.namespace, "--kubeconfig", str(scenario.plane.kubeconfig),
    )  # fmt: skip
    refused = helm.run(*install, values=FAKE_VALUES)
    assert refused.returncode != 0
    message = " ".join(refused.stderr.split())
    assert "maxSurge 1 needs kubelets >= 1.33" in message, message
    assert f"node {old} runs kubelet v1.32.4" in message, message
    no_surge = {"kubeletPlugin": {"updateStrategy": {"maxSurge": 0, "maxUnavailable": 1}}}
    accepted = helm.run(*install, values=_merged(FAKE_VALUES, no_surge))
    assert accepted.returncode == 0, accepted.stderr


@contextlib.contextmanager
def _applied_rbac(scenario: Scenario, helm: Helm) -> Iterator[dict[str, Obj]]:
    """The chart's RBAC objects and policy applied for real; by name; cluster-scoped ones deleted
    after, whatever happens."""
    release = f"chart-{scenario.namespace}"
    docs = helm.template(FAKE_VALUES, namespace=scenario.namespace, release=release)
    applier = Applier(scenario.client)
    applied = [doc for doc in docs if doc["kind"] in RBAC_KINDS]
    assert {doc["kind"] for doc in applied} == RBAC_KINDS
    try:
        for doc in applied:
            applier.apply(doc, dry_run=False)
        yield {f"{doc['kind']}/{doc['metadata']['name']}": doc for doc in applied}
    finally:
        for doc in applied:
            if "namespace" not in doc["metadata"]:
                applier.delete(doc)


def _token(client: kube.Kube, namespace: str, account: str, bound_to: Obj | None) -> str:
    spec: Obj = {"expirationSeconds": 3600}
    if bound_to is not None:
        meta = bound_to["metadata"]
        spec["boundObjectRef"] = {
            "apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"],
        }  # fmt: skip
    review = client.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
    )
    token: str = review["status"]["token"]
    return token


def _slice(node: str, suffix: str = "") -> Obj:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": f"{node}-{objects.DRIVER}{suffix}"},
        "spec": {
            "driver": objects.DRIVER,
            "nodeName": node,
            "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
            "devices": [],
        },
    }


def _outcome(call: Callable[[], object]) -> str:
    """``ok``, or the API server's message of the refusal (HTTP 403 or 422)."""
    try:
        call()
    except kube.KubeError as exc:
        if exc.status not in (403, 422):
            raise
        body = str(exc).split(f": HTTP {exc.status}: ", 1)[1]
        try:
            message: str = json.loads(body)["message"]
        except (ValueError, KeyError):
            return body
        return message
    return "ok"


@dataclasses.dataclass(frozen=True)
class PluginIdentity:
    """The chart's RBAC and policies applied, and the plugin's credentials on node A."""

    admin: kube.Kube
    plugin: kube.Kube
    """With a token bound to the plugin pod on `node_a`, as its projected token is."""
    unbound: kube.Kube
    """With a token of the plugin's ServiceAccount bound to no pod."""
    namespace: str
    node_a: str
    node_b: str


@pytest.fixture
def identity(scenario: Scenario, helm: Helm) -> Iterator[PluginIdentity]:
    admin = scenario.client
    ns = scenario.namespace
    node_a, node_b = f"{ns}-node-a", f"{ns}-node-b"
    for node in (node_a, node_b):
        objects.create_node(admin, node)
        scenario.nodes.append(node)  # teardown deletes them and every slice naming them
    with _applied_rbac(scenario, helm) as applied:
        account = f"chart-{ns}-gpu-dra-driver-kubelet-plugin"
        assert f"ServiceAccount/{account}" in applied
        # The plugin pod on node A, and a token bound to it (what its projected token is).
        pod = admin.create(
            f"/api/v1/namespaces/{ns}/pods",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "plugin-a"},
                "spec": {
                    "nodeName": node_a,
                    "serviceAccountName": account,
                    "containers": [{"name": "plugin", "image": "registry.example/plugin"}],
                },
            },
        )
        ca_file = str(local(scenario.plane).ca_file)
        plugin = kube.Kube(
            server=admin.server, token=_token(admin, ns, account, pod), ca_file=ca_file
        )
        review = plugin.create(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        user = review["status"]["userInfo"]
        assert user["username"] == f"system:serviceaccount:{ns}:{account}"
        assert user["extra"]["authentication.kubernetes.io/node-name"] == [node_a], user
        assert user["extra"]["authentication.kubernetes.io/pod-name"] == ["plugin-a"], user
        unbound = kube.Kube(
            server=admin.server, token=_token(admin, ns, account, None), ca_file=ca_file
        )
        yield PluginIdentity(admin, plugin, unbound, ns, node_a, node_b)


def _refused_once_enforced(
    write: Callable[[], object], undo: Callable[[], object], what: str
) -> str:
    """The refusal of `write` by a policy, whose binding may take a moment to be enforced: a
    write that got through meanwhile is undone and tried again."""

    def refused() -> str | None:
        outcome = _outcome(write)
        if outcome == "ok":
            undo()
            return None
        return outcome

    message: str = kube.wait_for(refused, what=what)
    return message


def test_a_plugin_identity_writes_only_its_own_nodes_slices(identity: PluginIdentity) -> None:
    admin, plugin = identity.admin, identity.plugin
    node_a, node_b = identity.node_a, identity.node_b
    # Own node: allowed, once the authorizer has seen the binding.
    own = functools.partial(plugin.create, SLICES, _slice(node_a))
    kube.wait_for(lambda: _outcome(own) == "ok", what="RBAC lets the plugin create slices")

    # Another node: refused by the policy.
    message = _refused_once_enforced(
        functools.partial(plugin.create, SLICES, _slice(node_b)),
        functools.partial(admin.delete, f"{SLICES}/{_slice(node_b)['metadata']['name']}"),
        what="the policy refuses node B's slice",
    )
    assert (
        f"the kubelet plugin on node {node_a} may only write ResourceSlices of that node, "
        f"not slices of node {node_b}"
    ) in message, message

    # Deletes are judged by the slice deleted.
    admin.create(SLICES, _slice(node_b, "-admin"))
    b_slice = f"{SLICES}/{_slice(node_b, '-admin')['metadata']['name']}"
    assert f"not slices of node {node_b}" in _outcome(functools.partial(plugin.delete, b_slice))
    assert admin.exists(b_slice)
    a_slice = f"{SLICES}/{_slice(node_a)['metadata']['name']}"
    assert _outcome(functools.partial(plugin.delete, a_slice)) == "ok"

    # A token bound to no pod names no node: the policy refuses every write.
    message = _outcome(functools.partial(identity.unbound.create, SLICES, _slice(node_a)))
    assert "the kubelet plugin's credentials name no node" in message, message

    # RBAC: the plugin never touches DeviceClasses.
    message = _outcome(
        functools.partial(plugin.delete, "/apis/resource.k8s.io/v1/deviceclasses/gpu.dra.dev")
    )
    assert 'cannot delete resource "deviceclasses"' in message, message
    assert admin.exists("/apis/resource.k8s.io/v1/deviceclasses/gpu.dra.dev")


def _daemon(identity: PluginIdentity, node: str, daemon: str = "gpu-0") -> Obj:
    """The Deployment the plugin on `node` makes for an MPS daemon (its own code builds it)."""
    runner = mpsdeployments.DeploymentRunner(
        rest.Rest(client.ApiClient()),
        namespace=identity.namespace,
        node_name=node,
        image="registry.example/gpu-dra-driver:test",
        driver=objects.DRIVER,
    )
    env = {"CUDA_MPS_PIPE_DIRECTORY": f"/var/lib/kubelet/plugins/gpu.dra.dev/mps/{daemon}/pipe"}
    return runner.deployment(daemon, ("nvidia-cuda-mps-control",), env)


def test_a_plugin_identity_writes_only_its_own_nodes_mps_daemons(identity: PluginIdentity) -> None:
    admin, plugin = identity.admin, identity.plugin
    node_a, node_b = identity.node_a, identity.node_b
    deployments = f"/apis/apps/v1/namespaces/{identity.namespace}/deployments"

    def path(body: Obj) -> str:
        return f"{deployments}/{body['metadata']['name']}"

    # Own node: allowed, once the authorizer has seen the binding.
    own = _daemon(identity, node_a)
    create_own = functools.partial(plugin.create, deployments, own)
    kube.wait_for(lambda: _outcome(create_own) == "ok", what="RBAC lets the plugin create one")

    # Another node's daemon, and a Deployment that is no daemon: refused by the policy.
    theirs = _daemon(identity, node_b)
    message = _refused_once_enforced(
        functools.partial(plugin.create, deployments, theirs),
        functools.partial(admin.delete, path(theirs)),
        what="the policy refuses node B's daemon",
    )
    assert (
        f"the kubelet plugin on node {node_a} may only write MPS daemon Deployments of that "
        f"node, not one of node {node_b}"
    ) in message, message
    other = _daemon(identity, node_a, daemon="gpu-1")
    other["metadata"]["name"] = "not-a-daemon"
    other["metadata"]["labels"] = {"app.kubernetes.io/name": "something-else"}
    message = _outcome(functools.partial(plugin.create, deployments, other))
    assert "may only write MPS daemon Deployments (label gpu.dra.dev/mps-daemon)" in message
    assert "not Deployment not-a-daemon" in message, message

    # Deletes are judged by the Deployment deleted.
    admin.create(deployments, theirs)
    message = _outcome(functools.partial(plugin.delete, path(theirs)))
    assert f"not one of node {node_b}" in message, message
    assert admin.exists(path(theirs))
    assert _outcome(functools.partial(plugin.delete, path(own))) == "ok"

    # A token bound to no pod names no node.
    message = _outcome(functools.partial(identity.unbound.create, deployments, own))
    assert "the kubelet plugin's credentials name no node" in message, message


def _allowed(client: kube.Kube, user: str, namespace: str, attributes: Obj) -> bool:
    review = client.create(
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
                "resourceAttributes": attributes,
            },
        },
    )
    return bool(review["status"].get("allowed"))


def _attrs(verb: str, resource: str, group: str = "resource.k8s.io", **more: str) -> Obj:
    return {"verb": verb, "resource": resource, "group": group, **more}


def test_each_identity_gets_what_its_process_calls_and_no_more(
    scenario: Scenario, helm: Helm
) -> None:
    ns = scenario.namespace
    plugin = f"system:serviceaccount:{ns}:chart-{ns}-gpu-dra-driver-kubelet-plugin"
    controller = f"system:serviceaccount:{ns}:chart-{ns}-gpu-dra-driver-controller"
    leases = {"group": "coordination.k8s.io", "resource": "leases"}
    lease_in_namespace = {"verb": "create", "namespace": ns, **leases}
    cases = [
        (plugin, _attrs("create", "resourceslices"), True),
        (plugin, _attrs("watch", "resourceslices"), True),
        (plugin, _attrs("delete", "resourceslices"), True),
        (plugin, _attrs("deletecollection", "resourceslices"), False),
        (plugin, _attrs("get", "resourceclaims", namespace="anywhere"), True),
        (plugin, _attrs("list", "resourceclaims"), False),
        (plugin, _attrs("update", "resourceclaims", namespace="anywhere"), False),
        (plugin, _attrs("patch", "resourceclaims", subresource="status", namespace="x"), True),
        (plugin, _attrs("get", "nodes", group=""), True),
        (plugin, _attrs("list", "nodes", group=""), False),
        (plugin, _attrs("delete", "deviceclasses"), False),
        (plugin, _attrs("create", "pods", group="", namespace=ns), False),
        (plugin, _attrs("get", "secrets", group="", namespace=ns), False),
        (plugin, _attrs("create", "deployments", group="apps", namespace=ns), True),
        (plugin, _attrs("list", "deployments", group="apps", namespace=ns), True),
        (plugin, _attrs("delete", "deployments", group="apps", namespace=ns), True),
        (plugin, _attrs("update", "deployments", group="apps", namespace=ns), False),
        (plugin, _attrs("create", "deployments", group="apps", namespace="kube-system"), False),
        (controller, _attrs("list", "resourceslices"), True),
        (controller, _attrs("delete", "resourceslices"), True),
        (controller, _attrs("create", "resourceslices"), False),
        (controller, _attrs("update", "resourceslices"), False),
        (controller, _attrs("watch", "nodes", group=""), True),
        (controller, _attrs("update", "nodes", group=""), False),
        (controller, _attrs("create", "deviceclasses"), True),
        (controller, _attrs("patch", "deviceclasses"), True),
        (controller, _attrs("delete", "deviceclasses"), False),
        (controller, _attrs("get", "resourceclaims", namespace=ns), False),
        (controller, lease_in_namespace, True),
        (controller, {"verb": "update", "namespace": ns, **leases}, True),
        (controller, {"verb": "create", "namespace": "kube-system", **leases}, False),
        (controller, _attrs("get", "secrets", group="", namespace=ns), False),
    ]
    with _applied_rbac(scenario, helm):
        admin = scenario.client
        kube.wait_for(
            lambda: _allowed(admin, controller, ns, lease_in_namespace),
            what="the authorizer saw RBAC",
        )
        wrong = [
            (user.rsplit("-", 1)[-1], attributes, expected)
            for user, attributes, expected in cases
            if _allowed(admin, user, ns, attributes) != expected
        ]
        assert wrong == [], "(identity, request, expected allowed) the authorizer disagrees with"
