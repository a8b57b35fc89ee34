"""``python -m e2e.devicecheck prepare|run``, called by ``hack/device-check.sh``.

- ``prepare``: build and pack ``.device/`` (`bundling`); prints its manifest;
- ``run --bundle DIR``: the check on a GPU machine, from the unpacked bundle; prints one JSON
  summary line and exits 1 when a required claim failed or something was left behind;
- ``run --dry-run``: the same flow with fake GPUs on a synthetic driver root, from this checkout's
  own builds (no bundle; containerd and runc built here with Go, cached); with ``--bundle DIR``
  too, from the unpacked bundle's binaries and image (a try of what will be carried).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import shutil
import sys
import tempfile

from e2e import probe
from e2e.devicecheck import bundling, running
from e2e.harness import binaries, containerd, images
from tests.driverroot import nvidiactk
from tests.preload import building


def dry_run_settings(work_dir: pathlib.Path) -> running.Settings:
    """This checkout's builds: the cluster binaries, containerd and runc, the probe's image, the
    quota library and the fake libcuda and NVML (installed as a synthetic driver's libraries)."""
    build = building.build(building.Flavour.PLAIN)
    return running.Settings(
        bin_dir=binaries.ensure_built(),
        runtime_bin_dir=containerd.ensure_built(),
        image=images.build(probe.build()),
        work_dir=work_dir,
        preload_library=build.library,
        nvidia_cdi_hook=nvidiactk.build() / "nvidia-cdi-hook",
        fake_driver=build.fakes,
    )


def bundle_settings(bundle: pathlib.Path, work_dir: pathlib.Path) -> running.Settings:
    """The unpacked bundle's builds, on the machine's real GPUs."""
    return running.Settings(
        bin_dir=bundle / "bin",
        runtime_bin_dir=bundle / "bin",
        image=bundling.image(bundle),
        work_dir=work_dir,
        preload_library=bundle / "libgpuquota.so",
        nvidia_cdi_hook=bundle / "bin" / "nvidia-cdi-hook",
    )


def _settings(args: argparse.Namespace, work_dir: pathlib.Path) -> running.Settings:
    if args.bundle is None:
        if not args.dry_run:
            raise SystemExit("run needs --bundle DIR (the unpacked bundle) or --dry-run")
        return dry_run_settings(work_dir)
    settings = bundle_settings(args.bundle.resolve(), work_dir)
    if args.dry_run:  # the bundle's binaries and image, tried here on fake GPUs
        fakes = building.build(building.Flavour.PLAIN).fakes
        settings = dataclasses.replace(settings, fake_driver=fakes)
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.devicecheck", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("prepare", help="build and pack .device/ (here)")
    run = commands.add_parser("run", help="the check (on the GPU machine, or --dry-run)")
    run.add_argument("--bundle", type=pathlib.Path, help="the unpacked bundle")
    run.add_argument("--dry-run", action="store_true", help="fake GPUs, a synthetic driver")
    run.add_argument("--work-dir", type=pathlib.Path, help="default: a new dir under /tmp")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        manifest = bundling.prepare()
        print(json.dumps(manifest, indent=1))
        return 0
    # A short path: the kubelet's registry socket paths must stay under 108 bytes.
    work_dir = args.work_dir or pathlib.Path(tempfile.mkdtemp(prefix="gdra-dc-", dir="/tmp"))
    summary = running.run(_settings(args, work_dir))
    print(running.report_line(summary), flush=True)
    if summary["ok"] and args.work_dir is None:
        shutil.rmtree(work_dir, ignore_errors=True)
    else:
        print(f"logs and records: {work_dir}", file=sys.stderr)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
