"""The one error of the config API: `ConfigError`, and the helpers that build its field paths.

A `ConfigError` means that user-supplied config (a claim's or a DeviceClass's opaque parameters, or
a quantity string) is wrong. The caller should fail the claim that carries it and report the message
to the user; retrying cannot help until the user changes the object.

Every error names the field at fault as a dotted path from the root of what was being decoded:
``sharing.mpsConfig.defaultActiveThreadPercentage``, with list items and map entries in brackets
(``config[2]``, ``defaultPerDevicePinnedMemoryLimit[GPU-abc]``) and the root itself as ``""``.
Decoders raise with the path they know and callers that hold more context prefix it on the way up
(`prefixed`), so the resolver reports ``config[2].opaque.parameters.sharing.strategy: ...``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator


class ConfigError(Exception):
    """Invalid user config; `path` names the field at fault, `message` says what is wrong."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message, path)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def within(self, prefix: str) -> ConfigError:
        """The same error, seen from a container whose field `prefix` holds the faulty value."""
        return ConfigError(self.message, join(prefix, self.path))


def join(prefix: str, path: str) -> str:
    """Append `path` (a field name, ``[key]`` or a longer path) to `prefix`."""
    if not prefix:
        return path
    if not path:
        return prefix
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def item(path: str, key: str | int) -> str:
    """The path of a list item or map entry: ``item("config", 2) == "config[2]"``."""
    return f"{path}[{key}]"


@contextlib.contextmanager
def prefixed(prefix: str) -> Iterator[None]:
    """Re-raise any `ConfigError` from the block with `prefix` in front of its path."""
    try:
        yield
    except ConfigError as err:
        # Keep the original cause (a JSON decode error, say) but not the inner ConfigError itself:
        # its message is repeated in full by the new one.
        raise err.within(prefix) from err.__cause__


def quote(text: str) -> str:
    """Quote user text for a message, the way it would appear in JSON."""
    return json.dumps(text, ensure_ascii=False)
