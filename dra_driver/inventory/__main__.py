"""Print the ResourceSlices a node would publish, as YAML: ``python -m dra_driver.inventory``.

Example: ``python -m dra_driver.inventory --gpus fake:2xH100-80GB,1xL4 --mode compat``.
A summary of devices per GPU goes to stderr, the slices to stdout.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

import yaml

from dra_driver import backends, inventory
from dra_driver.backends import errors
from dra_driver.slices import building, settings, splitting, wire

DEFAULT_DRIVER = "gpu.dra.dev"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        backend = backends.open_backend(args.gpus, node_name=args.node_name)
    except errors.BackendUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        node = inventory.discover(backend, node_name=args.node_name)
    finally:
        backend.close()
    config = settings.PublishSettings(
        mode=settings.Mode(args.mode),
        dynamic_mig=not args.no_dynamic_mig,
        shared=settings.SharedSettings(
            strategy=settings.SharingStrategy(args.sharing_strategy),
            compat_shares=args.compat_shares,
        ),
    )
    groups = building.build(node, config)
    specs = splitting.specs(
        splitting.split(groups),
        driver=args.driver_name,
        node_name=args.node_name,
        pool=args.node_name,
        generation=1,
    )
    for group in groups:
        kinds = Counter(_type(device) for device in group.devices)
        summary = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
        print(f"# gpu {group.index}: {summary or 'nothing'}", file=sys.stderr)
    if args.format == "table":
        _print_table(groups)
        return 0
    yaml.safe_dump_all(
        [_resource_slice(spec, index) for index, spec in enumerate(specs)],
        sys.stdout,
        sort_keys=False,
    )
    return 0


def _print_table(groups: list[building.GpuDevices]) -> None:
    rows = [("DEVICE", "TYPE", "DETAIL", "MEMORY", "SHARES")]
    for group in groups:
        for device in group.devices:
            attrs = device.get("attributes", {})
            detail = attrs.get("profile", attrs.get("productName", {})).get("string", "")
            if "placementStart" in attrs:
                start, size = attrs["placementStart"]["int"], attrs["placementSize"]["int"]
                detail += f" @{start}:{size}" + (" (static)" if "uuid" in attrs else "")
            capacity = device.get("capacity", {})
            memory = capacity["memory"]["value"] if "memory" in capacity else ""
            shares = "many" if device.get("allowMultipleAllocations") else "1"
            rows.append((device["name"], _type(device), detail, memory, shares))
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _type(device: wire.Device) -> str:
    return device.get("attributes", {}).get("type", {}).get("string", "?")


def _resource_slice(spec: wire.SliceSpec, index: int) -> dict[str, object]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"generateName": f"{index:05x}-{spec['driver']}-{spec['nodeName']}-"},
        "spec": spec,
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dra_driver.inventory", description=__doc__)
    parser.add_argument("--gpus", default="fake:8xA100-40GB", help="'nvml' or 'fake:<spec>'")
    parser.add_argument("--node-name", default="node-0")
    parser.add_argument("--driver-name", default=DEFAULT_DRIVER)
    parser.add_argument("--mode", choices=[m.value for m in settings.Mode], default="full")
    parser.add_argument("--no-dynamic-mig", action="store_true")
    parser.add_argument(
        "--sharing-strategy",
        choices=[s.value for s in settings.SharingStrategy],
        default=settings.SharingStrategy.MPS.value,
    )
    parser.add_argument("--compat-shares", type=int, default=0)
    parser.add_argument("--format", choices=["yaml", "table"], default="yaml")
    return parser


if __name__ == "__main__":
    sys.exit(main())
