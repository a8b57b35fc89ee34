"""The ``gpu-dra`` command's surface (`cli.__main__`): flags, colour choice, exit codes, scripts.

Covers: pyproject installs the command as ``gpu-dra`` and as the kubectl plugin
``kubectl-gpu_dra``, both the same entry point; ``--metrics`` repeats and comma-separates;
``-n`` and ``-A`` exclude each other; colour follows ``--color``/``--no-color``, a terminal and
``NO_COLOR``; a missing kubeconfig exits 2 with a message; an unreachable server exits 1.
"""

from __future__ import annotations

import io
import pathlib
import tomllib

import pytest

from cli import __main__ as command

ROOT = pathlib.Path(__file__).parents[2]


def test_the_console_scripts_are_the_command() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["gpu-dra"] == scripts["kubectl-gpu_dra"] == "cli.__main__:main"


def test_flags() -> None:
    args = command.parse_args(
        ["--metrics", "a:1,b:2", "--metrics=c:3", "-o", "wide", "--node", "n"]
    )
    assert args.metrics == ["a:1", "b:2", "c:3"]
    assert (args.output, args.node, args.command) == ("wide", "n", "map")
    with pytest.raises(SystemExit):
        command.parse_args(["-n", "x", "-A"])
    assert command.parse_args(["--no-color"]).color == "never"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("choice", "tty", "no_color", "expected"),
    [
        pytest.param("auto", True, "", True, id="terminal"),
        pytest.param("auto", False, "", False, id="pipe"),
        pytest.param("auto", True, "1", False, id="NO_COLOR"),
        pytest.param("always", False, "1", True, id="always"),
        pytest.param("never", True, "", False, id="never"),
    ],
)
def test_colour(
    choice: str, tty: bool, no_color: str, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", no_color)
    assert command._color(choice, _Tty() if tty else io.StringIO()) is expected


def test_a_missing_kubeconfig_exits_2(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert command.main(["--kubeconfig", str(tmp_path / "none")]) == 2
    assert "no cluster configuration" in capsys.readouterr().err


def test_an_unreachable_server_exits_1(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    assert command.main(["--kubeconfig", str(kubeconfig), "--timeout", "5"]) == 1
    assert "cannot read the cluster" in capsys.readouterr().err
