"""Our driver's entries in a claim's allocated config list, decoded.

A claim's allocation (``status.allocation.devices.config``) lists, in order, the configs of the
DeviceClasses it used (``source: FromClass``) and then the claim's own (``FromClaim``), for every
driver in the claim. Each entry names the requests it targets (``requests``; empty means all) and
holds an opaque config (``opaque: {driver, parameters}``).

`decode` keeps the entries whose ``opaque.driver`` is ours and decodes their parameters strictly
(`v1alpha1.decoding`); it decodes all of them, so a bad config is reported even where another entry
would win. An entry that is not opaque is an error: it may be meant for us and we cannot read it.
Entries of other drivers are skipped unread. The entries themselves come from the API server, so
fields we do not know are ignored (a newer server may add some); errors name the entry,
``config[2].opaque.parameters.sharing.strategy``.
"""

from __future__ import annotations

import dataclasses
import enum

from api import _jsonfields, errors
from api.v1alpha1 import decoding, types


class ConfigSource(enum.StrEnum):
    """Where an allocated config came from; a claim's own configs beat its classes'."""

    CLASS = "FromClass"
    CLAIM = "FromClaim"

    @property
    def rank(self) -> int:
        return 1 if self is ConfigSource.CLAIM else 0


@dataclasses.dataclass(frozen=True)
class Entry:
    """One of our driver's config entries, with its parameters decoded and validated."""

    index: int
    """Position in the allocation's config list (entries of all drivers counted)."""
    source: ConfigSource
    requests: tuple[str, ...]
    """Request names it targets (``req`` or ``req/sub``); empty: every request."""
    config: types.Config

    @property
    def path(self) -> str:
        return errors.item("config", self.index)


def decode(raw: object, *, driver: str, source: ConfigSource | None = None) -> list[Entry]:
    """Decode our entries of a config list (a JSON array; None counts as empty).

    `source` is assumed for entries without one, for lists that carry none (a claim's
    ``spec.devices.config``, a DeviceClass's ``spec.config``); None makes ``source`` required.
    """
    if raw is None:
        return []
    entries = []
    for index, item in enumerate(_jsonfields.as_array(raw, "config")):
        with errors.prefixed(errors.item("config", index)):
            entry = _entry(item, index=index, driver=driver, source=source)
        if entry is not None:
            entries.append(entry)
    return entries


def _entry(item: object, *, index: int, driver: str, source: ConfigSource | None) -> Entry | None:
    obj = _jsonfields.as_object(item, "")
    if obj.get("opaque") is None:
        raise errors.ConfigError("not an opaque config; only opaque configs are supported")
    opaque = _jsonfields.as_object(obj["opaque"], "opaque")
    if _jsonfields.as_string(opaque.get("driver"), "opaque.driver") != driver:
        return None
    if obj.get("source") is not None or source is None:
        source = _jsonfields.as_enum(obj.get("source"), "source", ConfigSource, what="source")
    requests = _requests(obj.get("requests"))
    if opaque.get("parameters") is None:
        raise errors.ConfigError("required", "opaque.parameters")
    with errors.prefixed("opaque.parameters"):
        config = decoding.decode(opaque["parameters"])
    return Entry(index=index, source=source, requests=requests, config=config)


def _requests(raw: object) -> tuple[str, ...]:
    names = _jsonfields.as_array([] if raw is None else raw, "requests")
    return tuple(_jsonfields.as_string(n, errors.item("requests", i)) for i, n in enumerate(names))
