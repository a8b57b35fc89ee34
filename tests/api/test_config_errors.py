"""`errors.ConfigError` and its field paths.

Covers:
- how an error reads (``path: message``, or the message alone at the root);
- joining paths (fields with dots, items with brackets) and prefixing errors as they bubble up,
  including through several levels and with the original cause kept;
- pickling (errors may cross process boundaries).
"""

from __future__ import annotations

import pickle

import pytest

from api import errors


@pytest.mark.parametrize(
    ("path", "text"),
    [
        pytest.param("", "bad", id="root"),
        pytest.param("sharing.strategy", "sharing.strategy: bad", id="field"),
        pytest.param("config[2]", "config[2]: bad", id="item"),
    ],
)
def test_str_reads_path_then_message(path: str, text: str) -> None:
    err = errors.ConfigError("bad", path)
    assert (err.path, err.message, str(err)) == (path, "bad", text)


@pytest.mark.parametrize(
    ("prefix", "path", "joined"),
    [
        pytest.param("", "", "", id="both-empty"),
        pytest.param("", "a.b", "a.b", id="no-prefix"),
        pytest.param("a", "", "a", id="root-path"),
        pytest.param("a", "b.c", "a.b.c", id="field"),
        pytest.param("a", "[GPU-abc]", "a[GPU-abc]", id="item"),
        pytest.param(
            "config[2]", "opaque.parameters", "config[2].opaque.parameters", id="after-item"
        ),
    ],
)
def test_join(prefix: str, path: str, joined: str) -> None:
    assert errors.join(prefix, path) == joined


def test_item() -> None:
    assert errors.item("config", 2) == "config[2]"
    assert errors.item("limits", "GPU-abc") == "limits[GPU-abc]"


def _fail_deep_inside(cause: Exception) -> None:
    with errors.prefixed("config[2]"), errors.prefixed("opaque.parameters"):
        try:
            raise cause
        except ValueError as err:
            raise errors.ConfigError("must be an integer", "sharing.mpsConfig") from err


def test_prefixed_nests_and_keeps_the_cause() -> None:
    cause = ValueError("root cause")
    with pytest.raises(errors.ConfigError) as info:
        _fail_deep_inside(cause)
    assert str(info.value) == "config[2].opaque.parameters.sharing.mpsConfig: must be an integer"
    assert info.value.__cause__ is cause
    assert info.value.__suppress_context__


def test_prefixed_lets_other_errors_through() -> None:
    with pytest.raises(KeyError), errors.prefixed("config[0]"):
        raise KeyError("x")


def test_pickles() -> None:
    err = errors.ConfigError("bad", "sharing.strategy")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.path, copy.message) == (err.path, err.message)


def test_quote_looks_like_json() -> None:
    assert errors.quote('a "b"') == '"a \\"b\\""'
