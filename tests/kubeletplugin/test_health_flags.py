"""The plugin's health flags.

Covers: health is watched by default with only the application XIDs ignored; ``--no-health-watch``
turns it off; ``--health-ignore-xids`` adds XIDs; a value that is not a list of XIDs is refused
naming the flag (exit 2).
"""

from __future__ import annotations

import pytest

from kubeletplugin import healthwatching, settings


def test_watched_by_default() -> None:
    assert settings.parse(["--node-name=n"]).health == healthwatching.Settings()


def test_turned_off_and_more_xids_ignored() -> None:
    parsed = settings.parse(["--node-name=n", "--no-health-watch", "--health-ignore-xids=74,79"])
    assert parsed.health == healthwatching.Settings(enabled=False, ignored_xids=frozenset({74, 79}))


def test_a_bad_xid_list_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        settings.parse(["--node-name=n", "--health-ignore-xids=74,x"])
    assert exit_info.value.code == 2
    assert "--health-ignore-xids" in capsys.readouterr().err
