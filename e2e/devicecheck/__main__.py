"""``python -m e2e.devicecheck prepare|run``, called by ``hack/device-check.sh``.

- ``prepare [--with-runtime]``: build and pack ``.device/`` (`bundling`); prints its manifest;
- ``run --bundle DIR``: the check on a GPU machine, from the unpacked bundle; prints one JSON
  summary line and exits 1 when a required claim failed;
- ``run --dry-run``: the same flow with fake GPUs and the fake libcuda, from this checkout's own
  builds (no bundle).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile

from e2e import probe
from e2e.devicecheck import bundling, running
from e2e.harness import binaries
from tests.preload import building


def _settings(args: argparse.Namespace, work_dir: pathlib.Path) -> running.Settings:
    if args.dry_run:
        build = building.build(building.Flavour.PLAIN)
        return running.Settings(
            bin_dir=binaries.ensure_built(),
            work_dir=work_dir,
            probe=probe.build(),
            preload_library=build.library,
            fake_driver=build.fakes,
        )
    if args.bundle is None:
        raise SystemExit("run needs --bundle DIR (the unpacked .device/bundle.tar.xz) or --dry-run")
    bundle: pathlib.Path = args.bundle.resolve()
    return running.Settings(
        bin_dir=bundle / "bin",
        work_dir=work_dir,
        probe=bundle / "probe",
        preload_library=bundle / "libgpuquota.so",
        nvidia_cdi_hook=bundle / "bin" / "nvidia-cdi-hook",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.devicecheck", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="build and pack .device/ (here)")
    prepare.add_argument("--with-runtime", action="store_true", help="containerd and runc too")
    run = commands.add_parser("run", help="the check (on the GPU machine, or --dry-run)")
    run.add_argument("--bundle", type=pathlib.Path, help="the unpacked bundle")
    run.add_argument("--dry-run", action="store_true", help="fake GPUs, this checkout's builds")
    run.add_argument("--work-dir", type=pathlib.Path, help="default: a new dir under /tmp")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        manifest = bundling.prepare(with_runtime=args.with_runtime)
        print(json.dumps(manifest, indent=1))
        return 0
    # A short path: the kubelet's registry socket paths must stay under 108 bytes.
    work_dir = args.work_dir or pathlib.Path(tempfile.mkdtemp(prefix="gdra-dc-", dir="/tmp"))
    summary = running.run(_settings(args, work_dir))
    print(running.report_line(summary), flush=True)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
