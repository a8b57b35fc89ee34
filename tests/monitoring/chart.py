"""The chart's monitoring objects as ``helm template`` renders them (the real Helm, built from its
Go module by ``deploy/helm/build-helm.sh`` and cached), with config dirs of its own."""

from __future__ import annotations

import functools
import json
import os
import pathlib
import subprocess
import tempfile
from typing import Any

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "gpu-dra-driver"
RELEASE = NAMESPACE = "gpu-dra-driver"
"""Release and namespace of the renders: the objects are named ``gpu-dra-driver-...``."""


@functools.cache
def helm() -> pathlib.Path:
    built = subprocess.run(
        ["bash", str(CHART.parent / "build-helm.sh")],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return pathlib.Path(built.stdout.strip().splitlines()[-1])


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object the chart renders with `values` (on top of a placeholder image)."""
    with tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            **{f"HELM_{d}_HOME": f"{home}/{d}" for d in ("CACHE", "CONFIG", "DATA")},
        }
        result = subprocess.run(
            [str(helm()), "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
             "--kube-version", "1.37.0", "--values", "-"],
            input=json.dumps({"image": {"repository": "registry.example/gpu-dra-driver"}, **values}),
            capture_output=True, text=True, env=env, check=False, timeout=120,
        )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(f"helm template failed:\n{result.stderr}")
    return [obj for obj in yaml.safe_load_all(result.stdout) if obj]


def only(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The one object of `kind` among `objects`."""
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"{len(found)} objects of kind {kind}"
    return found[0]
