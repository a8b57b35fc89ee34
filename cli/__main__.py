"""``gpu-dra`` (also ``kubectl gpu-dra``): the GPU occupancy map of a cluster.

Wiring only: flags → one API client (``--kubeconfig``, else ``$KUBECONFIG`` or
``~/.kube/config``, else the in-cluster configuration) → `reading` and `usage` → `mapping` →
`drawing` or `encoding`. Exit codes: 0 the map was printed; 1 the API server could not be read;
2 bad flags or no cluster configuration.

RBAC it needs: ``resourceslices``, ``resourceclaims`` and ``pods`` list (cluster-wide, or with
``-n`` at least in that namespace), ``devicetaintrules`` list (optional).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TextIO

from cli import drawing, encoding, mapping, occupancy, reading, usage
from controller import connecting, errors

DEFAULT_DRIVER = "gpu.dra.dev"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="gpu-dra",
        description="Draw which pod holds which part of which GPU: whole GPUs, MIG slices, shares.",
    )
    add = parser.add_argument
    add("command", nargs="?", choices=["map"], default="map", help="what to show (default: map)")
    add("--kubeconfig", help="default: $KUBECONFIG, ~/.kube/config, else in-cluster")
    add("--context", help="kubeconfig context (default: the current one)")
    add("--driver-name", default=DEFAULT_DRIVER)
    add("--node", help="only this node")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="only GPUs serving claims of this namespace")
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="every namespace (the default)"
    )
    add("-o", "--output", choices=["text", "wide", "json"], default="text")
    add(
        "--metrics",
        action="append",
        default=[],
        metavar="URL",
        help="a kubelet plugin's metrics (http://host:port/metrics; repeat or comma-separate): "
        "shows what each share uses against its limit",
    )
    add("--color", choices=["auto", "always", "never"], default="auto")
    add(
        "--no-color",
        dest="color",
        action="store_const",
        const="never",
        help="same as --color=never",
    )
    add("--timeout", type=float, default=30.0, help="seconds per API request")
    args = parser.parse_args(argv)
    args.metrics = [url for value in args.metrics for url in value.split(",") if url]
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def main(argv: list[str] | None = None, *, out: TextIO | None = None) -> int:
    args = parse_args(argv)
    out = out or sys.stdout
    try:
        api = connecting.connect_as_kubectl(args.kubeconfig, context=args.context)
    except errors.ConfigurationError as exc:
        print(f"gpu-dra: no cluster configuration: {exc}", file=sys.stderr)
        return 2
    with api.api:
        try:
            snapshot = reading.read(
                api, driver=args.driver_name, node=args.node, namespace=args.namespace
            )
        except errors.ApiError as exc:
            print(f"gpu-dra: cannot read the cluster: {exc}", file=sys.stderr)
            return 1
    shares, notes = usage.scrape(args.metrics)
    found = mapping.build(
        snapshot, driver=args.driver_name, namespace=args.namespace, usage=shares, notes=notes
    )
    out.write(render(found, output=args.output, color=_color(args.color, out)))
    return 0


def render(found: occupancy.Map, *, output: str, color: bool) -> str:
    if output == "json":
        return json.dumps(encoding.encode(found), indent=2) + "\n"
    return drawing.draw(found, drawing.Style(color=color, wide=output == "wide"))


def _color(choice: str, out: TextIO) -> bool:
    """``always``/``never`` as said; ``auto``: a terminal, unless ``NO_COLOR`` is set."""
    if choice != "auto":
        return choice == "always"
    return out.isatty() and not os.environ.get("NO_COLOR")


if __name__ == "__main__":
    sys.exit(main())
