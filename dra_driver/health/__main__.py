"""``python -m dra_driver.health clear GPU-<uuid>|all [--plugin-dir DIR]``: ask the node's plugin
to clear a GPU's health (an admin's step after a GPU reset, see docs/health.md).

It only creates the request file ``clear-<uuid>`` (or ``clear-all``) in ``<plugin dir>/health/``;
the plugin's watcher takes it within a second. Run it in the plugin's container with
``kubectl exec``, or on the node.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Sequence

from dra_driver.health import ledger


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dra_driver.health", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    clear = commands.add_parser("clear", help="clear a GPU (or all) of this node")
    clear.add_argument("gpu", help="the GPU's UUID (GPU-…), or 'all'")
    clear.add_argument(
        "--plugin-dir",
        type=pathlib.Path,
        default=pathlib.Path("/var/lib/kubelet/plugins/gpu.dra.dev"),
    )
    args = parser.parse_args(argv)
    if args.gpu != "all" and (not args.gpu.startswith("GPU-") or "/" in args.gpu):
        parser.error(f"not a GPU UUID: {args.gpu!r} (expected GPU-…, or all)")
    directory = args.plugin_dir / ledger.DIRECTORY
    if not args.plugin_dir.is_dir():
        parser.error(f"no plugin dir at {args.plugin_dir} (use --plugin-dir)")
    directory.mkdir(exist_ok=True)
    name = ledger.CLEAR_ALL if args.gpu == "all" else ledger.CLEAR_PREFIX + args.gpu
    (directory / name).touch()
    print(f"requested: {directory / name} (the plugin takes it within a second)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
