"""Running the test programs of ``preload/testing/`` in their own processes and reading them.

Every program prints one line per command, ``<command> [name] key=value …`` (see
``harness_commands.c``). `run` runs a whole command list; `Session` drives a program over stdin,
one command at a time, for tests where processes must interleave. Every finished run is checked
for sanitizer reports. Programs run as in a container (`containers`): the claims named by their
`Environment` under the claims root, and no claims root at all when it names none.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from types import TracebackType

import pytest

from tests.preload import building, containers

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


@dataclasses.dataclass(frozen=True)
class Line:
    command: str
    words: tuple[str, ...]
    values: Mapping[str, str]

    @property
    def rc(self) -> int:
        return int(self.values["rc"])

    def number(self, key: str) -> int:
        return int(self.values[key], 0)


def parse(text: str) -> Line:
    words = text.split()
    plain = tuple(word for word in words[1:] if "=" not in word)
    values = dict(word.split("=", 1) for word in words[1:] if "=" in word)
    return Line(words[0] if words else "", plain, values)


@dataclasses.dataclass(frozen=True)
class Output:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[Line]:
        return [parse(text) for text in self.stdout.splitlines() if text.strip()]

    def results(self, command: str) -> list[Line]:
        return [line for line in self.lines if line.command == command]

    def rcs(self, command: str) -> list[int]:
        return [line.rc for line in self.results(command)]

    def messages(self) -> list[str]:
        """The library's own stderr lines."""
        return [text for text in self.stderr.splitlines() if text.startswith("gpuquota[")]


def check_sanitizers(stderr: str) -> None:
    found = [marker for marker in SANITIZER_MARKERS if marker in stderr]
    assert not found, f"sanitizer report:\n{stderr}"


class Environment(dict[str, str]):
    """The environment variables of a program, and the claim directories its container shows
    under the claims root (``None``: no claims root)."""

    def __init__(
        self,
        variables: Mapping[str, str],
        *,
        claims: Sequence[pathlib.Path] | None,
        writable: bool = False,
    ) -> None:
        super().__init__(variables)
        self.claims = None if claims is None else tuple(claims)
        self.writable = writable
        """The claim directories mounted read-write (the plugin mounts them read-only)."""


def command(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """`argv` wrapped to run in the container `env` describes (`containers`)."""
    if not isinstance(env, Environment) or env.claims is None:
        return containers.command(argv, claims=None)
    if not containers.available():
        pytest.skip("claims are mounted in a mount namespace: needs root and unshare")
    return containers.command(argv, claims=env.claims, writable=env.writable)


def environment(
    build: building.Build,
    *,
    config: pathlib.Path | None = None,
    claims: Sequence[pathlib.Path] | None = None,
    preload: bool = True,
    writable: bool = False,
    extra: Mapping[str, str] | None = None,
) -> Environment:
    """A clean environment: the fakes on the library path, the library preloaded, and the claim
    directories to mount: `claims`, or the directory of `config` (a claim's quota.conf). No
    environment variable tells the library about its claims."""
    if config is not None:
        claims = (*(claims or ()), config.parent)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LD_LIBRARY_PATH": str(build.fakes),
        "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    }
    if preload:
        env["LD_PRELOAD"] = build.preload()
    env.update(extra or {})
    return Environment(env, claims=claims, writable=writable)


def run(
    build: building.Build,
    program: str,
    commands: str = "",
    *,
    options: Sequence[str] = (),
    env: Mapping[str, str],
    timeout: float = 30,
    input_text: str | None = None,
) -> Output:
    """Runs `program` (a test program's name, or a path) with `options`, then `commands`."""
    path = program if "/" in program else str(build.program(program))
    argv = command([path, *options, *commands.split()], env)
    result = subprocess.run(
        argv,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input_text,
        check=False,
    )
    check_sanitizers(result.stderr)
    return Output(result.returncode, result.stdout, result.stderr)


class Session:
    """A program that runs `commands`, then reads more from stdin; a context manager (the program
    is killed on exit if still running)."""

    def __init__(
        self,
        build: building.Build,
        program: str,
        commands: str = "",
        *,
        env: Mapping[str, str],
    ) -> None:
        argv = command([str(build.program(program)), *commands.split()], env)
        # Lives as long as the session; closed in __exit__.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self._buffer = b""
        self.process = subprocess.Popen(
            argv,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            bufsize=0,
        )

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.close()
        self.process.stdout.close()
        self._stderr.close()

    def line(self, timeout: float = 20) -> Line:
        """The next line the program prints."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.process.stdout], [], [], max(left, 0))
            if not ready:
                raise TimeoutError(f"no output within {timeout}s; stderr:\n{self.stderr()}")
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                raise EOFError(f"the program exited; stderr:\n{self.stderr()}")
            self._buffer += chunk
        text, self._buffer = self._buffer.split(b"\n", 1)
        return parse(text.decode())

    def until(self, command: str, timeout: float = 20) -> Line:
        while True:
            line = self.line(timeout)
            if line.command == command:
                return line

    def write(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text.encode() + b"\n")

    def send(self, command: str) -> Line:
        """Runs one command and returns its line."""
        self.write(command)
        return self.line()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def finish(self, timeout: float = 20) -> int:
        """Closes stdin (the program exits) and returns its exit status, sanitizers checked."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        returncode = self.process.wait(timeout)
        check_sanitizers(self.stderr())
        return returncode

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")
