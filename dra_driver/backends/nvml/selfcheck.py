"""Self-check of the NVML backend on a GPU machine: ``python -m dra_driver.backends.nvml.selfcheck``.

Prints one JSON document on stdout (logs go to stderr):

- ``gpus``: what `NvmlBackend.gpus()` discovers, MIG profiles and placements included;
- ``status``: `NvmlBackend.status()` of each GPU;
- ``probes``: NVML's raw answers where the backend had to choose (SM count from
  ``nvmlDeviceGetAttributes`` versus CUDA cores, MIG mode, each GPU-instance profile enum's ID and
  name), to check those choices on real hardware;
- ``roundtrip`` (only with ``--mig-roundtrip <gpu uuid>``): create the smallest MIG instance at
  the first free placement, read it back, destroy it, and check that destroying it again is
  `InstanceNotFoundError`. ``--enable-mig`` turns MIG mode on first and off again afterwards.

Exit status: 0 when everything asked for worked, 1 when a round-trip step failed, 2 when the
backend could not open.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import functools
import importlib
import json
import pathlib
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from dra_driver import hardware
from dra_driver.backends import errors
from dra_driver.backends.nvml import backend, translating


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options = {"sysfs_root": args.sysfs_root, "nvidia_smi": args.nvidia_smi}
    report: dict[str, Any] = {}
    status = 0
    try:
        if args.mig_roundtrip:
            steps: list[dict[str, Any]] = []
            report["roundtrip"] = steps
            status = _roundtrip(args.mig_roundtrip, args.enable_mig, options, steps)
        with backend.NvmlBackend(**options) as nvml:
            report["gpus"] = [dataclasses.asdict(gpu) for gpu in nvml.gpus()]
            report["status"] = [dataclasses.asdict(nvml.status(gpu.uuid)) for gpu in nvml.gpus()]
            report["probes"] = [_probe(gpu.uuid) for gpu in nvml.gpus()]
    except errors.BackendUnavailableError as error:
        report["error"] = str(error)
        status = 2
    print(json.dumps(report, indent=2, default=_json_value))
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dra_driver.backends.nvml.selfcheck", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sysfs-root", type=pathlib.Path, default=pathlib.Path("/sys"))
    parser.add_argument("--nvidia-smi", default="nvidia-smi")
    parser.add_argument(
        "--mig-roundtrip",
        metavar="GPU_UUID",
        help="create and destroy the smallest MIG instance on this GPU (MIG mode must be on)",
    )
    parser.add_argument(
        "--enable-mig",
        action="store_true",
        help="with --mig-roundtrip: turn MIG mode on first, and off again afterwards",
    )
    return parser


def _roundtrip(
    gpu_uuid: str, enable_mig: bool, options: dict[str, Any], steps: list[dict[str, Any]]
) -> int:
    """Run the round trip, appending one entry per step; 0 if all passed, 1 otherwise."""
    record = _recorder(steps)
    was_enabled = True
    if enable_mig:
        with backend.NvmlBackend(**options) as nvml:
            was_enabled = nvml.status(gpu_uuid).mig_enabled
            if not record("enable-mig", lambda: nvml.set_mig_mode(gpu_uuid, enabled=True)):
                return 1
    # Reopened, so that discovery sees the profiles MIG mode may have unlocked.
    with backend.NvmlBackend(**options) as nvml:
        ok = _create_and_destroy(nvml, gpu_uuid, record)
        if enable_mig and not was_enabled:
            ok &= record("disable-mig", lambda: nvml.set_mig_mode(gpu_uuid, enabled=False))
    return 0 if ok else 1


def _create_and_destroy(
    nvml: backend.NvmlBackend, gpu_uuid: str, record: Callable[[str, Callable[[], Any]], bool]
) -> bool:
    gpu = next((g for g in nvml.gpus() if g.uuid == gpu_uuid), None)
    if gpu is None or not gpu.mig_profiles:
        return record("find-profile", lambda: _fail(f"no MIG profiles on GPU {gpu_uuid}"))
    profile = gpu.mig_profiles[0]
    created: list[hardware.MigInstance] = []

    def create() -> hardware.MigInstance:
        for placement in profile.placements:
            try:
                created.append(
                    nvml.create_mig_instance(
                        gpu_uuid, profile_id=profile.profile_id, placement=placement
                    )
                )
            except errors.PlacementOccupiedError:
                continue
            return created[0]
        raise errors.PlacementOccupiedError(f"every placement of {profile.name} is taken")

    if not record("create", create):
        return False
    instance = created[0]
    ok = record("listed", lambda: _expect(instance in nvml.status(gpu_uuid).mig_instances))
    gi_id = instance.gpu_instance_id
    ok &= record("destroy", lambda: nvml.destroy_mig_instance(gpu_uuid, gpu_instance_id=gi_id))
    ok &= record("gone", lambda: _expect(instance not in nvml.status(gpu_uuid).mig_instances))
    ok &= record("destroy-again-not-found", lambda: _destroy_again(nvml, gpu_uuid, gi_id))
    return ok


def _recorder(steps: list[dict[str, Any]]) -> Callable[[str, Callable[[], Any]], bool]:
    def record(name: str, action: Callable[[], Any]) -> bool:
        started = time.monotonic()
        entry: dict[str, Any] = {"step": name}
        try:
            result = action()
        except (errors.BackendError, AssertionError) as error:
            entry.update(ok=False, error=f"{type(error).__name__}: {error}")
        else:
            entry.update(ok=True, result=result)
        entry["seconds"] = round(time.monotonic() - started, 3)
        steps.append(entry)
        return bool(entry["ok"])

    return record


def _destroy_again(nvml: backend.NvmlBackend, gpu_uuid: str, gpu_instance_id: int) -> str:
    try:
        nvml.destroy_mig_instance(gpu_uuid, gpu_instance_id=gpu_instance_id)
    except errors.InstanceNotFoundError as error:
        return str(error)
    raise AssertionError("destroying a destroyed instance succeeded")


def _expect(condition: bool) -> None:
    if not condition:
        raise AssertionError("not as expected")


def _fail(message: str) -> None:
    raise AssertionError(message)


def _probe(gpu_uuid: str) -> dict[str, Any]:
    """NVML's raw answers for one GPU (NVML is open: the backend holds it)."""
    nvml = importlib.import_module("pynvml")
    handle = nvml.nvmlDeviceGetHandleByUUID(gpu_uuid)

    def attempt(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except nvml.NVMLError as error:
            return f"NVML_ERROR_{translating.error_name(nvml, error)}"

    def profile(profile_enum: int) -> Any:
        info = nvml.nvmlDeviceGetGpuInstanceProfileInfo(handle, profile_enum)
        return {"id": int(info.id), "name": str(getattr(info, "name", ""))}

    return {
        "uuid": gpu_uuid,
        "attributes_multiprocessors": attempt(
            lambda: int(nvml.nvmlDeviceGetAttributes(handle).multiprocessorCount)
        ),
        "gpu_cores": attempt(lambda: int(nvml.nvmlDeviceGetNumGpuCores(handle))),
        "mig_mode": attempt(lambda: [int(v) for v in nvml.nvmlDeviceGetMigMode(handle)]),
        "gpu_instance_profiles": {
            str(e): attempt(functools.partial(profile, e))
            for e in range(int(nvml.NVML_GPU_INSTANCE_PROFILE_COUNT))
        },
    }


def _json_value(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


if __name__ == "__main__":
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    sys.exit(main())
