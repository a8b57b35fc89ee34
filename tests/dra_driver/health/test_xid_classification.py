"""Which XIDs change a GPU's health.

Covers: the application XIDs (13, 31, 43, 45, 68, 69, 94, 109) change nothing and fatal ones
(48, 63, 64, 74, 79, 92, 95, 119, 120) and unknown ones do; an admin's extra XIDs are ignored
too; the flag value is parsed strictly; messages name the known XIDs.
"""

from __future__ import annotations

import pytest

from dra_driver.health import xids


@pytest.mark.parametrize("xid", [13, 31, 43, 45, 68, 69, 94, 109])
def test_application_xids_change_nothing(xid: int) -> None:
    assert not xids.Classifier().is_fatal(xid)


@pytest.mark.parametrize("xid", [48, 63, 64, 74, 79, 92, 95, 119, 120, 140, 9999])
def test_other_xids_make_the_gpu_unhealthy(xid: int) -> None:
    assert xids.Classifier().is_fatal(xid)


def test_an_admin_adds_xids_to_ignore() -> None:
    classifier = xids.Classifier.with_extra(xids.parse("74, 92"))
    assert not classifier.is_fatal(74)
    assert not classifier.is_fatal(92)
    assert not classifier.is_fatal(13)
    assert classifier.is_fatal(79)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", frozenset()), ("74", {74}), ("74,79,", {74, 79}), (" 1 , 2 ", {1, 2})],
    ids=["empty", "one", "trailing-comma", "spaces"],
)
def test_flag_values(text: str, expected: set[int]) -> None:
    assert xids.parse(text) == expected


@pytest.mark.parametrize("text", ["x", "-1", "0", "7.5", "74;79"])
def test_bad_flag_values_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an XID"):
        xids.parse(text)


def test_messages_name_known_xids() -> None:
    assert xids.describe(79) == "XID 79 (GPU has fallen off the bus)"
    assert xids.describe(4242) == "XID 4242"
