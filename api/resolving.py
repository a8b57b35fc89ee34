"""Which of a claim's configs applies to one allocated device: the precedence rule.

`resolve` answers for one allocation result (a device the claim got for request ``req`` or for
sub-request ``req/sub`` of a ``firstAvailable`` request), given the claim's allocated config list:

1. An entry applies to the result if its ``requests`` is empty, or names the result's request
   exactly, or names the result's base request (the part before ``/``).
2. Among the entries that apply, the winner ranks highest by (source, specificity, position):
   source ``FromClass`` 0 < ``FromClaim`` 1; specificity: names no request 0 < names the base
   request 1 < names the exact ``req/sub`` 2; position: later beats earlier. So class configs
   always lose to claim configs; within a source, a config naming the request beats one naming
   none; then the later one wins.
3. An entry that applies without naming the request (``requests`` empty) but whose kind does not
   apply to the device type is ignored: a GpuConfig for a whole claim must not break its MIG
   requests. An entry that names the request and is of the wrong kind is an error. To configure
   ``firstAvailable`` alternatives of different device types, name each sub-request.
4. Shared devices take no opaque config: their sharing strategy is set by the node admin. An
   entry naming their request is an error; entries for all requests are ignored for them.
5. The winner replaces the defaults whole; configs are never merged field by field, so what a
   device gets is always one config that a user wrote, which is easy to predict and to explain.
   Nothing applies: None, and the device gets its type's default (exclusive use).
6. Every entry for our driver is decoded and validated, winner or not (`configentries`), so a bad
   config is always reported; errors carry the entry's path, ``config[2].opaque.parameters...``.
"""

from __future__ import annotations

from collections.abc import Sequence

from api import configentries, devicetypes, errors
from api.v1alpha1 import types


def resolve(
    raw_entries: object, *, driver: str, request: str, device_type: devicetypes.DeviceType
) -> types.Config | None:
    """The config for one allocation result, from the allocation's raw config list (JSON)."""
    entries = configentries.decode(raw_entries, driver=driver)
    winner = select(entries, request=request, device_type=device_type)
    return None if winner is None else winner.config


def select(
    entries: Sequence[configentries.Entry], *, request: str, device_type: devicetypes.DeviceType
) -> configentries.Entry | None:
    """The winning entry for one result (rules 1-5), or None; decode `entries` once per claim.

    Returning the entry, not only its config, lets the caller group the results that share one
    entry (an MPS daemon serves all the devices of one config entry).
    """
    best: tuple[tuple[int, int, int], configentries.Entry] | None = None
    for entry in entries:
        specificity = _specificity(entry.requests, request)
        if specificity is None:
            continue
        if device_type not in entry.config.applies_to:
            if specificity == 0:
                continue
            raise errors.ConfigError(_wrong_kind(entry, request, device_type), entry.path)
        rank = (entry.source.rank, specificity, entry.index)
        if best is None or rank > best[0]:
            best = (rank, entry)
    return None if best is None else best[1]


def _specificity(names: Sequence[str], request: str) -> int | None:
    """How precisely `names` targets `request` (rule 2), or None if the entry does not apply."""
    if not names:
        return 0
    if "/" in request and request in names:
        return 2
    if request.partition("/")[0] in names:
        return 1
    return None


def _wrong_kind(
    entry: configentries.Entry, request: str, device_type: devicetypes.DeviceType
) -> str:
    if device_type is devicetypes.DeviceType.SHARED:
        return (
            f"shared devices take no opaque config: their sharing strategy is set by the node "
            f"admin (request {errors.quote(request)})"
        )
    kinds = types.kinds_for(device_type)
    hint = f"; use {' or '.join(kinds)}" if kinds else ""
    return (
        f"{entry.config.kind} does not apply to device type {device_type.value} "
        f"(request {errors.quote(request)}){hint}"
    )
