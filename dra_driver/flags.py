"""Command-line values both processes check the same way, and the flags they share.

Each value type raises `argparse.ArgumentTypeError`, so argparse refuses a bad value naming its
flag (``argument --sweep-interval: must be a positive number of seconds, not '0'``) and exits
with code 2, as `processes.CANNOT_START` says. Checks that span several flags are made by each
process's ``settings.parse`` with ``parser.error``, naming the flags as well.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import math
import re

from dra_driver.slices import limits

LOG_FORMATS = ("console", "json")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
OFF = -1
"""The port value that switches a TCP endpoint off."""
_RESOURCE_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


@dataclasses.dataclass(frozen=True)
class Logging:
    format: str
    """``console`` (a readable line) or ``json`` (one object per line)."""
    level: str
    """The lowest level logged, one of `LOG_LEVELS`."""


def add_common(parser: argparse.ArgumentParser, *, default_driver: str) -> None:
    """The flags of both processes: the driver's name, the API server, logging."""
    parser.add_argument("--driver-name", type=driver_name, default=default_driver)
    parser.add_argument(
        "--kubeconfig", type=optional_path, default=None, help="default: in-cluster configuration"
    )
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="console")
    parser.add_argument("--log-level", type=str.lower, choices=LOG_LEVELS, default="info")


def logging_of(args: argparse.Namespace) -> Logging:
    return Logging(format=args.log_format, level=args.log_level)


def seconds(text: str) -> float:
    """A positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def count(text: str) -> int:
    """A whole number, zero or more."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number, 0 or more, not {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port, 1 to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port (1 to 65535), not {text!r}")
    return value


def port_or_off(text: str) -> int | None:
    """A TCP port, or a negative number (``-1``) for none (``None``)."""
    try:
        if int(text) < 0:
            return None
        return port(text)
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(
            f"must be a TCP port (1 to 65535) or {OFF} (off), not {text!r}"
        ) from None


def address(text: str) -> str:
    """An IP address to listen on (``0.0.0.0``: every IPv4 address)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an IP address, not {text!r}") from None
    return text


def driver_name(text: str) -> str:
    """A DRA driver name: a DNS subdomain of at most 63 characters (``gpu.dra.dev``)."""
    if not (len(text) <= 63 and limits.dns_subdomain(text)):
        raise argparse.ArgumentTypeError(
            f"must be a DNS subdomain of at most 63 characters, like gpu.dra.dev, not {text!r}"
        )
    return text


def subdomain(text: str) -> str:
    """An object name: a DNS subdomain (lower case letters, digits, '-' and '.')."""
    if not limits.dns_subdomain(text):
        raise argparse.ArgumentTypeError(f"must be a DNS subdomain, not {text!r}")
    return text


def label(text: str) -> str:
    """A namespace name: a DNS label (lower case letters, digits, '-'; at most 63)."""
    if not limits.dns_label(text):
        raise argparse.ArgumentTypeError(f"must be a DNS label, not {text!r}")
    return text


def extended_resource_name(text: str) -> str:
    """``<domain>/<name>`` outside kubernetes.io (``gpu.dra.dev/gpu``), or "" for none."""
    domain, _, name = text.partition("/")
    proper = "." in domain and limits.dns_subdomain(domain) and bool(_RESOURCE_NAME.match(name))
    if text and (not proper or domain == "kubernetes.io" or domain.endswith(".kubernetes.io")):
        raise argparse.ArgumentTypeError(
            f"must be <domain>/<name> outside kubernetes.io, like gpu.dra.dev/gpu, not {text!r}"
        )
    return text


def non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def optional_path(text: str) -> str | None:
    """A path, or nothing when given empty (``--kubeconfig=``: the in-cluster configuration)."""
    return text or None


def absolute(text: str) -> str:
    """An absolute path (a host path the container runtime reads)."""
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError(f"must be an absolute path, not {text!r}")
    return text
