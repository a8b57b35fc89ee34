"""The cluster controller's settings: its flags, checked and parsed once into a frozen `Settings`.

Every check happens in `parse`; a bad value is refused the argparse way (usage, the flag named,
exit code 2) before anything starts. Defaults that a Deployment sets come from the environment:
``POD_NAMESPACE`` (the Lease's namespace) and ``POD_NAME`` (the leader-election identity).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import socket
from collections.abc import Mapping, Sequence

from controller import leaderelection
from dra_driver import flags

DEFAULT_DRIVER = "gpu.dra.dev"


@dataclasses.dataclass(frozen=True)
class Election:
    enabled: bool
    """Elect a leader through the Lease; False: this replica always leads."""
    namespace: str
    """Of the Lease."""
    lease_name: str
    identity: str
    """This replica's name in the Lease, before the random suffix `leaderelection.identity` adds."""
    timing: leaderelection.Timing


@dataclasses.dataclass(frozen=True)
class Webhook:
    cert: pathlib.Path
    """The serving certificate (PEM), reloaded when it changes."""
    key: pathlib.Path
    """Its private key (PEM)."""
    bind: str
    """The address of the HTTPS port."""
    port: int


@dataclasses.dataclass(frozen=True)
class Settings:
    driver_name: str
    kubeconfig: str | None
    """None: the in-cluster configuration."""
    election: Election
    extended_resource_name: str
    """extendedResourceName of the whole-GPU class ("": none)."""
    gc_interval: float
    """Seconds between slice garbage-collection passes (also run on Node deletions)."""
    classes_interval: float
    """Seconds between DeviceClass re-applies (also applied on becoming leader)."""
    webhook: Webhook | None
    """None: no admission webhook served (no certificate given)."""
    logging: flags.Logging


def parse(
    argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> Settings:
    """The settings of `argv` (default: ``sys.argv[1:]``) and `environ` (default: ``os.environ``)."""
    env = os.environ if environ is None else environ
    parser = _parser(env)
    args = parser.parse_args(argv)
    if (args.webhook_cert is None) != (args.webhook_key is None):
        parser.error("--webhook-cert and --webhook-key go together")
    try:
        timing = leaderelection.Timing(
            lease_duration=args.lease_duration,
            renew_deadline=args.renew_deadline,
            retry_period=args.retry_period,
        )
    except ValueError as exc:
        parser.error(f"--lease-duration, --renew-deadline, --retry-period: {exc}")
    webhook = None
    if args.webhook_cert is not None:
        webhook = Webhook(
            cert=args.webhook_cert,
            key=args.webhook_key,
            bind=args.webhook_bind,
            port=args.webhook_port,
        )
    return Settings(
        driver_name=args.driver_name,
        kubeconfig=args.kubeconfig,
        election=Election(
            enabled=args.leader_elect,
            namespace=args.namespace,
            lease_name=args.lease_name,
            identity=args.identity,
            timing=timing,
        ),
        extended_resource_name=args.extended_resource_name,
        gc_interval=args.gc_interval,
        classes_interval=args.classes_interval,
        webhook=webhook,
        logging=flags.logging_of(args),
    )


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpu-dra-controller", description="The driver's cluster controller."
    )
    add = parser.add_argument
    flags.add_common(parser, default_driver=DEFAULT_DRIVER)
    add(
        "--namespace",
        type=flags.label,
        default=env.get("POD_NAMESPACE") or "default",
        help="namespace of the Lease (default: $POD_NAMESPACE, else 'default')",
    )
    add("--lease-name", type=flags.subdomain, default="gpu-dra-controller")
    add(
        "--identity",
        type=flags.non_empty,
        default=env.get("POD_NAME") or socket.gethostname(),
        help="leader-election identity, a random suffix added (default: $POD_NAME, else hostname)",
    )
    add(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="elect a leader through the Lease (--no-leader-elect: this replica always leads)",
    )
    add("--lease-duration", type=flags.seconds, default=15.0, help="seconds")
    add("--renew-deadline", type=flags.seconds, default=10.0, help="seconds")
    add("--retry-period", type=flags.seconds, default=2.0, help="seconds")
    add(
        "--extended-resource-name",
        type=flags.extended_resource_name,
        default="",
        help="extendedResourceName of the whole-GPU class, e.g. gpu.dra.dev/gpu (default: none)",
    )
    add(
        "--gc-interval",
        type=flags.seconds,
        default=300.0,
        help="seconds between slice garbage-collection passes (also run on Node deletions)",
    )
    add(
        "--classes-interval",
        type=flags.seconds,
        default=600.0,
        help="seconds between DeviceClass re-applies (they are applied on becoming leader)",
    )
    add("--webhook-cert", type=pathlib.Path, help="serving certificate (PEM), reloaded on change")
    add("--webhook-key", type=pathlib.Path, help="its private key (PEM)")
    add("--webhook-bind", type=flags.address, default="0.0.0.0", help="of the webhook's port")
    add("--webhook-port", type=flags.port, default=9443)
    return parser
