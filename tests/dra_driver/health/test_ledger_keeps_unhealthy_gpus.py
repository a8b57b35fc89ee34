"""The ledger of unhealthy GPUs.

Covers: what is marked is kept across a restart in the same boot and dropped on another boot;
the first reason stays, a lost GPU is lost whatever came before; an unreadable file is an empty
ledger (logged); clear requests are taken once; without a directory nothing is written; the admin's
``python -m dra_driver.health clear`` makes the request (and refuses what is not a GPU UUID).
"""

from __future__ import annotations

import pathlib

import pytest
from structlog.testing import capture_logs

from dra_driver import hardware
from dra_driver.health import __main__ as health_cli
from dra_driver.health import ledger


def _event(gpu: str, xid: int) -> hardware.HealthEvent:
    return hardware.HealthEvent(gpu, xid, f"XID {xid}", 1.0)


def test_kept_across_restarts_in_one_boot_and_dropped_on_the_next(tmp_path: pathlib.Path) -> None:
    first = ledger.Ledger(tmp_path, boot_id="boot-1")
    assert first.mark(_event("GPU-a", 79))
    assert ledger.Ledger(tmp_path, boot_id="boot-1").unhealthy() == {"GPU-a": _event("GPU-a", 79)}
    assert ledger.Ledger(tmp_path, boot_id="boot-2").unhealthy() == {}


def test_the_first_reason_stays_but_lost_wins(tmp_path: pathlib.Path) -> None:
    book = ledger.Ledger(None, boot_id="b")
    assert book.mark(_event("GPU-a", 48))
    assert not book.mark(_event("GPU-a", 79))
    assert book.mark(_event("GPU-a", 0))
    assert not book.mark(_event("GPU-a", 79))
    assert book.unhealthy()["GPU-a"].lost
    assert book.clear("GPU-a")
    assert not book.clear("GPU-a")
    assert list(tmp_path.iterdir()) == []


def test_an_unreadable_file_is_an_empty_ledger(tmp_path: pathlib.Path) -> None:
    (tmp_path / ledger.STATE_FILE).write_text('{"bootId": "b", "gpus": {"GPU-a": 5}}')
    with capture_logs() as logs:
        assert ledger.Ledger(tmp_path, boot_id="b").unhealthy() == {}
    assert [e["event"] for e in logs] == ["health.ledger_unreadable"]


def test_clear_requests_are_taken_once(tmp_path: pathlib.Path) -> None:
    book = ledger.Ledger(tmp_path, boot_id="b")
    (tmp_path / "clear-GPU-a").touch()
    (tmp_path / "clear-all").touch()
    (tmp_path / "unrelated").touch()
    assert book.take_clear_requests() == {"GPU-a", "*"}
    assert book.take_clear_requests() == set()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unrelated"]


def test_the_clear_command_makes_the_request_the_ledger_takes(tmp_path: pathlib.Path) -> None:
    assert health_cli.main(["clear", "GPU-a", "--plugin-dir", str(tmp_path)]) == 0
    assert health_cli.main(["clear", "all", "--plugin-dir", str(tmp_path)]) == 0
    book = ledger.Ledger(tmp_path / ledger.DIRECTORY, boot_id="b")
    assert book.take_clear_requests() == {"GPU-a", "*"}


def test_the_clear_command_refuses_what_is_not_a_gpu(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        health_cli.main(["clear", "../etc", "--plugin-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert not (tmp_path / ledger.DIRECTORY).exists()
