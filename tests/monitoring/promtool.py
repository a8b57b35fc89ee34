"""Prometheus' ``promtool``, built from its Go module once (``hack/build-promtool.sh``, cached
outside the clone; a cold build takes a few minutes), and its two rule commands:

- `check_rules`: ``promtool check rules`` on rule groups (the syntax and types of every
  expression, the alerts' templates);
- `run_tests`: ``promtool test rules`` on a unit-test file: input series, expressions evaluated
  at given times with the samples they must give, alerts that must (or must not) fire.

Both raise `PromtoolError` with promtool's output when it fails.
"""

from __future__ import annotations

import functools
import pathlib
import subprocess
import tempfile
from typing import Any

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "hack" / "build-promtool.sh"


class PromtoolError(AssertionError):
    """promtool failed; the message carries what it printed."""


@functools.cache
def build() -> pathlib.Path:
    """The promtool binary (built on the first call, cached)."""
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise PromtoolError(f"{BUILD_SCRIPT.name} failed:\n{result.stderr}")
    return pathlib.Path(result.stdout.strip().splitlines()[-1])


def _run(*args: str, cwd: pathlib.Path) -> str:
    result = subprocess.run(
        [str(build()), *args], capture_output=True, text=True, check=False, cwd=cwd, timeout=120
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise PromtoolError(f"promtool {' '.join(args)} failed:\n{output}")
    return output


def check_rules(groups: dict[str, Any]) -> str:
    """``promtool check rules`` on a rule file holding `groups` (``{"groups": [...]}``)."""
    with tempfile.TemporaryDirectory() as directory:
        where = pathlib.Path(directory)
        (where / "rules.yaml").write_text(yaml.safe_dump(groups))
        return _run("check", "rules", "rules.yaml", cwd=where)


def run_tests(
    groups: dict[str, Any], tests: list[dict[str, Any]], *, annotations: bool = True
) -> str:
    """``promtool test rules`` of `tests` (each with ``input_series`` and ``promql_expr_test``
    or ``alert_rule_test``) against a rule file holding `groups`; evaluation every minute.
    Without `annotations` the alerts' annotations are left out (promtool would otherwise
    expect each test to list them)."""
    if not annotations:
        groups = {
            "groups": [
                {**group, "rules": [_plain(rule) for rule in group["rules"]]}
                for group in groups["groups"]
            ]
        }
    with tempfile.TemporaryDirectory() as directory:
        where = pathlib.Path(directory)
        (where / "rules.yaml").write_text(yaml.safe_dump(groups))
        spec = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}
        (where / "tests.yaml").write_text(yaml.safe_dump(spec, width=1000))
        return _run("test", "rules", "tests.yaml", cwd=where)


def _plain(rule: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in rule.items() if key != "annotations"}
