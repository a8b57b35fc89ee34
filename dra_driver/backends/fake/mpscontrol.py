"""A fake ``nvidia-cuda-mps-control``: speaks the control commands, records them, runs no GPU.

``python -m dra_driver.backends.fake.mpscontrol -d`` (or ``-f`` in the foreground, as a daemon in
its own container runs) starts a daemon the way the real one does:
it forks, the child listens (on an abstract unix socket named after ``$CUDA_MPS_PIPE_DIRECTORY``,
where it also leaves a ``control`` file as the real daemon leaves its FIFO) and the parent returns
once it is ready. Without ``-d`` it is the control client: each stdin line is sent to the daemon and
the answer printed. Commands: ``get_default_active_thread_percentage``,
``set_default_active_thread_percentage N``, ``set_default_device_pinned_mem_limit DEV NM``,
``get_default_device_pinned_mem_limit DEV``, ``quit``. Every command the daemon gets is appended
to ``$CUDA_MPS_LOG_DIRECTORY/control.log`` (tests read it). ``FAKE_MPS_FAIL_START=1`` makes the
daemon fail to start, as a real one does on a busy GPU or a bad pipe directory.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import socket
import sys
import time

SOCKET = "control"


def main(argv: list[str]) -> int:
    pipe = pathlib.Path(os.environ.get("CUDA_MPS_PIPE_DIRECTORY", "/tmp/nvidia-mps"))
    logs = pathlib.Path(os.environ.get("CUDA_MPS_LOG_DIRECTORY", "/var/log/nvidia-mps"))
    if argv[:1] == ["-d"]:
        return _start_daemon(pipe, logs)
    if argv[:1] == ["-f"]:
        return _start_daemon(pipe, logs, foreground=True)
    return _client(pipe)


def _start_daemon(pipe: pathlib.Path, logs: pathlib.Path, *, foreground: bool = False) -> int:
    if os.environ.get("FAKE_MPS_FAIL_START") == "1":
        print("An MPS control daemon failed to start (injected failure)", file=sys.stderr)
        return 1
    pipe.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    path = pipe / SOCKET
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(_address(pipe))
    server.listen(8)
    path.write_text(f"{os.getpid()}\n")  # the real daemon's pipe directory holds a "control" FIFO
    if foreground:  # -f: stay in front (a daemon in its own container)
        _serve(server, path, logs / "control.log")
        return 0
    if os.fork() > 0:
        return 0  # the parent returns once the socket is listening, like the real -d
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    _serve(server, path, logs / "control.log")
    os._exit(0)


def _serve(server: socket.socket, path: pathlib.Path, log: pathlib.Path) -> None:
    settings = {"percentage": "100"}
    limits: dict[str, str] = {}
    server.settimeout(1.0)
    with log.open("a", buffering=1) as record:
        record.write(
            f"started pid={os.getpid()} devices={os.environ.get('CUDA_VISIBLE_DEVICES', '')}\n"
        )
        while True:
            try:
                connection, _ = server.accept()
            except TimeoutError:
                if not path.exists():  # its directory was removed: nobody can reach it any more
                    return
                continue
            connection.settimeout(5.0)
            with connection:
                command = connection.recv(4096).decode().strip()
                record.write(f"{time.time():.3f} {command}\n")
                words = command.split()
                answer = ""
                if command == "quit":
                    connection.sendall(b"\n")
                    path.unlink(missing_ok=True)
                    record.write("stopped\n")
                    return
                if words[:1] == ["get_default_active_thread_percentage"]:
                    answer = settings["percentage"]
                elif words[:1] == ["set_default_active_thread_percentage"] and len(words) == 2:
                    settings["percentage"] = words[1]
                elif words[:1] == ["set_default_device_pinned_mem_limit"] and len(words) == 3:
                    limits[words[1]] = words[2]
                elif words[:1] == ["get_default_device_pinned_mem_limit"] and len(words) == 2:
                    answer = limits.get(words[1], "0")
                else:
                    answer = f"unknown command: {command}"
                connection.sendall((answer + "\n").encode())


def _address(pipe: pathlib.Path) -> str:
    """An abstract unix socket named after the pipe directory (no path-length limit, no file)."""
    digest = hashlib.sha256(str(pipe.resolve()).encode()).hexdigest()[:24]
    return f"\0gpu-dra-fake-mps-{digest}"


def _client(pipe: pathlib.Path) -> int:
    """Each line of stdin is a command; its answer is written (and flushed) as soon as it comes,
    so that one client can be kept open and asked again and again, like the real one."""
    while line := sys.stdin.readline():
        command = line.strip()
        if not command:
            continue
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.settimeout(5)
                client.connect(_address(pipe))
                client.sendall(command.encode())
                answer = client.recv(4096).decode()
        except OSError as exc:
            print(f"Cannot find MPS control daemon process ({exc})", file=sys.stderr)
            return 1
        sys.stdout.write(answer)
        sys.stdout.flush()
    return 0


def running_daemons(under: pathlib.Path | None = None) -> set[int]:
    """PIDs of the fake daemons running on this machine (tests clean up with it); with `under`,
    only those whose pipe directory lies below that directory."""
    pids = set()
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"dra_driver.backends.fake.mpscontrol" not in cmdline or not {b"-d", b"-f"} & set(
            cmdline
        ):
            continue
        if under is not None and not _pipe_dir(entry).startswith(str(under)):
            continue
        pids.add(int(entry.name))
    return pids


def _pipe_dir(process: pathlib.Path) -> str:
    try:
        environ = (process / "environ").read_bytes().split(b"\0")
    except OSError:
        return ""
    for item in environ:
        if item.startswith(b"CUDA_MPS_PIPE_DIRECTORY="):
            return item.split(b"=", 1)[1].decode(errors="replace")
    return ""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
