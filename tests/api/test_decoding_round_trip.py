"""Every valid config survives its JSON form: ``decode(config.to_dict()) == config`` (hypothesis).

Covers the typed objects over all shapes (`strategies.valid_configs`), through a dict and through
JSON text, and that re-encoding a decoded config gives the same JSON.
"""

from __future__ import annotations

import json

from hypothesis import given, settings

from api.v1alpha1 import decoding, types
from tests.api import strategies


@settings(max_examples=200, deadline=None)
@given(strategies.valid_configs)
def test_to_dict_then_decode_is_identity(config: types.Config) -> None:
    encoded = config.to_dict()
    assert decoding.decode(encoded) == config
    assert decoding.decode(json.dumps(encoded)) == config
    assert decoding.decode(encoded).to_dict() == encoded
