"""The health watcher, fed by a scripted event source.

Covers: an application XID is counted and changes nothing; a fatal XID makes the GPU unhealthy
with that XID (publish asked once), a double-bit ECC error as XID 48, a single-bit one only
counted; a flood of 20 000 XIDs keeps the first as the reason, asks to publish once and logs a
bounded number of lines; events for a GPU the node does not publish, or for no GPU, are dropped
and counted; a lost GPU is unhealthy as lost, over an earlier XID; probing: a lost GPU that
answers again recovers, a GPU with an XID that stops answering is lost, one that still answers
stays unhealthy; an admin's clear file clears one GPU or all; the thread survives source errors
(backing off, opening again), works on without events when none are supported, and stops.
"""

from __future__ import annotations

import collections
import pathlib

import pytest
from structlog.testing import capture_logs

from dra_driver import hardware
from dra_driver.health import ledger, sources, watching, xids
from tests.dra_driver.health import scripted
from tests.dra_driver.health.scripted import event, xid

A, B = "GPU-aaaa", "GPU-bbbb"


class Recorder:
    def __init__(self) -> None:
        self.changes = 0
        self.xids: collections.Counter[tuple[str, int]] = collections.Counter()
        self.ecc: collections.Counter[tuple[str, str]] = collections.Counter()
        self.dropped: collections.Counter[str] = collections.Counter()

    def reporting(self) -> watching.Reporting:
        def changed() -> None:
            self.changes += 1

        return watching.Reporting(
            on_change=changed,
            on_xid=lambda gpu, code: self.xids.update([(gpu, code)]),
            on_ecc=lambda gpu, kind: self.ecc.update([(gpu, kind)]),
            on_dropped=lambda reason: self.dropped.update([reason]),
        )


@pytest.fixture
def book(tmp_path: pathlib.Path) -> ledger.Ledger:
    return ledger.Ledger(tmp_path / "health", boot_id="boot-1")


@pytest.fixture
def source() -> scripted.ScriptedSource:
    return scripted.ScriptedSource()


@pytest.fixture
def seen() -> Recorder:
    return Recorder()


def make(
    source: scripted.ScriptedSource, book: ledger.Ledger, seen: Recorder, **settings: float
) -> watching.Watcher:
    return watching.Watcher(
        source,
        gpus=[A, B],
        book=book,
        settings=watching.Settings(**settings),  # type: ignore[arg-type]
        reporting=seen.reporting(),
    )


def test_an_application_xid_is_counted_and_changes_nothing(
    source: scripted.ScriptedSource, book: ledger.Ledger, seen: Recorder
) -> None:
    with capture_logs() as logs:
        make(source, book, seen).handle([xid(A, 13), xid(A, 94)])
    assert book.unhealthy() == {}
    assert seen.changes == 0
    assert seen.xids == {(A, 13): 1, (A, 94): 1}
    assert [e["xid"] for e in logs if e["event"] == "health.xid_ignored"] == [13, 94]


def test_a_fatal_xid_makes_the_gpu_unhealthy_with_it(
    source: scripted.ScriptedSource, book: ledger.Ledger, seen: Recorder
) -> None:
    make(source, book, seen).handle([xid(A, 79)])
    (reason,) = book.unhealthy().values()
    assert (reason.gpu_uuid, reason.xid, reason.lost) == (A, 79, False)
    assert reason.message == "XID 79 (GPU has fallen off the bus)"
    assert seen.changes == 1
    assert seen.xids == {(A, 79): 1}


def test_an_admin_can_ignore_more_xids(
    source: scripted.ScriptedSource, book: ledger.Ledger, seen: Recorder
) -> None:
    watcher = watching.Watcher(
        source,
        gpus=[A],
        book=book,
        settings=watching.Settings(classifier=xids.Classifier.with_extra({74})),
        reporting=seen.reporting(),
    )
    watcher.handle([xid(A, 74)])
    assert book.unhealthy() == {}
    assert seen.xids == {(A, 74): 1}


def test_ecc_errors_double_bit_is_xid_48_single_bit_is_counted(
    source: scripted.ScriptedSource, book: ledger.Ledger, seen: Recorder
) -> None:
    make(source, book, seen).handle(
        [event(A, sources.EventKind.SINGLE_BIT_ECC), event(B, sources.EventKind.DOUBLE_BIT_ECC)]
    )
    assert {uuid: e.xid for uuid, e in book.unhealthy().items()} == {B: 48}
    assert seen.ecc == {(A, "single"): 1, (B, "double"): 1}


def test_a_flood_keeps_the_first_reason_and_bounded_logs(
    source: scripted.ScriptedSource, book: ledger.Ledger, seen: Recorder
) -> None:
    flood = [xid(A, 48)] + [xid(A, 79 if i % 2 else 13) for i in range(20_000)]
    with capture_logs() as logs:
        make(source, book, seen).handle(flood)
    assert book.unhealthy()[A].xid == 48
    assert seen.changes == 1
    assert seen.xids[(A, 79)] == 10_000
    assert seen.xids[(A, 13)] == 10_000
    assert len(logs) <= 5


def test_events_for_gpus_not_published_or_for_no_gpu_are_dropped(
    source: scripted.ScriptedSource, book: ledger.Ledger, seen: Recorder
) -> None:
    with capture_logs() as logs:
        make(source, book, seen).handle(
            [xid("GPU-elsewhere", 79)] * 3 + [event(None, sources.EventKind.LOST)]
        )
    assert book.unhealthy() == {}
    assert seen.changes == 0
    assert seen.dropped == {"unknown-gpu": 3, "no-gpu": 1}
    dropped = [e for e in logs if e["event"] == "health.event_dropped"]
    assert [(e["reason"], e["gpu"]) for e in dropped] == [
        ("unknown-gpu", "GPU-elsewhere"),
        ("no-gpu", None),
    ]


def test_a_lost_gpu_is_lost_over_an_earlier_xid_and_recovers_when_it_answers(
    source: scripted.ScriptedSource, book: ledger.Ledger, seen: Recorder
) -> None:
    watcher = make(source, book, seen)
    watcher.handle([xid(A, 79), event(A, sources.EventKind.LOST), xid(A, 48)])
    assert book.unhealthy()[A].lost
    assert seen.changes == 2
    source.lost.add(A)
    watcher.probe()
    assert book.unhealthy()[A].lost
    source.lost.clear()  # a GPU reset
    with capture_logs() as logs:
        watcher.probe()
    assert book.unhealthy() == {}
    assert seen.changes == 3
    assert [e["event"] for e in logs] == ["health.recovered"]


def test_probing_a_gpu_with_an_xid(
    source: scripted.ScriptedSource, book: ledger.Ledger, seen: Recorder
) -> None:
    watcher = make(source, book, seen)
    watcher.handle([xid(A, 63)])
    watcher.probe()
    assert book.unhealthy()[A].xid == 63  # answers, but NVML cannot tell it was reset
    source.lost.add(A)
    watcher.probe()
    assert book.unhealthy()[A].lost


@pytest.mark.parametrize(
    ("request_file", "left"), [(f"clear-{A}", {B}), ("clear-all", set())], ids=["one", "all"]
)
def test_an_admin_clears_by_a_file(
    source: scripted.ScriptedSource,
    book: ledger.Ledger,
    seen: Recorder,
    request_file: str,
    left: set[str],
) -> None:
    watcher = make(source, book, seen, wait_s=0.01)
    watcher.handle([xid(A, 79), xid(B, 74)])
    assert book.directory is not None
    (book.directory / request_file).touch()
    (book.directory / "clear-GPU-healthy").touch()
    source.steps = [[]]
    watcher.start()
    source.played.wait(5)
    watcher.stop()
    assert set(book.unhealthy()) == left
    assert seen.changes == 3
    assert sorted(p.name for p in book.directory.iterdir()) == ["state.json"]


def test_the_thread_survives_errors_and_stops(
    source: scripted.ScriptedSource, book: ledger.Ledger, seen: Recorder
) -> None:
    source.open_errors = [sources.SourceError("NVML failed to create an event set")]
    source.steps = [
        sources.SourceError("NVML failed to wait for events: NVML_ERROR_UNKNOWN"),
        RuntimeError("a bug"),
        [xid(A, 79)],
    ]
    watcher = make(source, book, seen, wait_s=0.01, max_backoff_s=0.02)
    with capture_logs() as logs:
        watcher.start()
        assert source.played.wait(10)
        watcher.stop()
    assert book.unhealthy()[A].xid == 79
    assert source.opens == 4
    assert source.closes >= 4
    events = [e["event"] for e in logs]
    assert events.count("health.source_failed") == 2
    assert events.count("health.watch_failed") == 1


def test_without_events_it_logs_once_and_still_probes_and_clears(
    source: scripted.ScriptedSource, book: ledger.Ledger, seen: Recorder
) -> None:
    book.mark(hardware.HealthEvent(A, 0, "lost", 0.0))
    source.open_errors = [sources.UnsupportedError("no GPU supports events")]
    watcher = make(source, book, seen, wait_s=0.01, probe_interval_s=0.01)
    with capture_logs() as logs:
        watcher.start()
        for _ in range(500):
            if not book.unhealthy():
                break
            source.played.wait(0.01)
        watcher.stop()
    assert book.unhealthy() == {}  # probed: it answers
    assert source.opens == 1
    assert [e["event"] for e in logs].count("health.unwatched") == 1
