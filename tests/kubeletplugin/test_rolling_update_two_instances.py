"""A rolling update: an old and a new plugin pod on one node, both serving, one plugin dir.

Both instances have their own sockets and servers but share the plugin dir (checkpoint, lock,
fake GPU state) and the CDI dir, as two pods of the DaemonSet do. Covers, with calls from many
threads at once to both: the same claim gets identical answers everywhere and one MIG instance;
of two claims that (wrongly) name the same whole GPU exactly one is prepared and the other fails
with "already prepared", every time it is asked; a claim prepared by one instance is unprepared
by the other; the new instance keeps serving (and unpreparing) after the old one stopped. Each
with both instances writing the checkpoint in one layout, and with each writing another (the
release that moves to the per-claim layout, and a roll back from it).
"""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import pytest

from dra_driver import claims
from dra_driver.checkpoint import model, store
from tests.kubeletplugin import claimbook, pluginserver
from tests.kubeletplugin.claimbook import claim, gpu, mig, shared

THREADS = 12
CALL_TIMEOUT = 30.0


V1, V2 = store.Layout.FILE, store.Layout.DIRECTORY


@pytest.fixture(
    params=[(V1, V1), (V1, V2), (V2, V1)],
    ids=lambda pair: f"checkpoint-{pair[0].value}-to-{pair[1].value}",
)
def pods(
    layout: pluginserver.Layout, book: claimbook.ClaimBook, request: pytest.FixtureRequest
) -> Iterator[list[tuple[pluginserver.PluginServer, pluginserver.Stubs]]]:
    """The old pod and the new pod, each with the kubelet's stubs; once with both writing the
    checkpoint in one layout, and once for each way of handing the node to the other layout."""
    old_layout, new_layout = request.param
    old = pluginserver.PluginServer(
        layout, book=book, pod_uid="old-pod-uid", checkpoint_layout=old_layout
    )
    new = pluginserver.PluginServer(
        layout, book=book, pod_uid="new-pod-uid", checkpoint_layout=new_layout
    )
    with old, new, pluginserver.Stubs.of(old) as to_old, pluginserver.Stubs.of(new) as to_new:
        yield [(old, to_old), (new, to_new)]


def all_at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run `calls` in threads released together; their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait(timeout=10)
        return call()

    with futures.ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls, timeout=60))


def prepare(stubs: pluginserver.Stubs, ref: claims.ClaimRef) -> Any:
    """The v1 answer for one claim."""
    return stubs.v1.prepare(ref, timeout=CALL_TIMEOUT).claims[ref.uid]


def test_the_same_claim_prepared_everywhere_at_once_gets_one_answer(
    pods: list[tuple[pluginserver.PluginServer, pluginserver.Stubs]], book: claimbook.ClaimBook
) -> None:
    obj = claim("u-same", mig(0, "3g.20gb", 4), shared(1, share_id="aaaaaaaa-1"))
    book.add(obj)
    ref = claimbook.ref(obj)
    answers = all_at_once([functools.partial(prepare, pods[i % 2][1], ref) for i in range(THREADS)])
    assert answers[0].error == ""
    assert len(answers[0].devices) == 2
    different = [str(answer) for answer in answers if answer != answers[0]]
    assert different == [], f"first answer: {answers[0]}"
    plugin = pods[0][0]
    assert len(plugin.backend.status(plugin.backend.gpus()[0].uuid).mig_instances) == 1
    assert plugin.layout.checkpointed() == {"u-same": model.PrepareState.COMPLETED}


def test_two_claims_on_one_whole_gpu_exactly_one_wins(
    pods: list[tuple[pluginserver.PluginServer, pluginserver.Stubs]], book: claimbook.ClaimBook
) -> None:
    both = [claim("u-x", gpu(1)), claim("u-y", gpu(1))]
    for obj in both:
        book.add(obj)
    # Each pod is asked for each claim, several times, all at once.
    asked = [claimbook.ref(both[(i // 2) % 2]) for i in range(THREADS)]
    answers = all_at_once(
        [functools.partial(prepare, pods[i % 2][1], ref) for i, ref in enumerate(asked)]
    )
    outcomes = [(ref.uid, answer.error) for ref, answer in zip(asked, answers, strict=True)]
    winners = {uid for uid, error in outcomes if not error}
    assert len(winners) == 1, outcomes
    (winner,) = winners
    (loser,) = {"u-x", "u-y"} - winners
    refused = f"device gpu-1 is already prepared for claim ns/claim-{winner} ({winner})"
    for uid, error in outcomes:
        assert error == (refused if uid == loser else "")
    layout = pods[0][0].layout
    assert layout.checkpointed() == {winner: model.PrepareState.COMPLETED}
    assert layout.cdi_spec(winner).exists()
    assert not layout.cdi_spec(loser).exists()


def test_a_claim_prepared_by_one_pod_is_unprepared_by_the_other(
    pods: list[tuple[pluginserver.PluginServer, pluginserver.Stubs]], book: claimbook.ClaimBook
) -> None:
    (old, to_old), (new, to_new) = pods
    obj = claim("u-moved", mig(0, "1g.5gb", 6), shared(1, share_id="bbbbbbbb-2"))
    book.add(obj)
    assert to_old.v1.prepare(claimbook.ref(obj)).claims["u-moved"].error == ""
    old.stop()  # the old pod is gone; its sockets with it, the new pod's stay
    assert not old.dra_socket.exists()
    assert new.dra_socket.exists()
    assert new.registration_socket.exists()

    assert to_new.v1beta1.unprepare(claimbook.ref(obj)).claims["u-moved"].error == ""

    layout = new.layout
    assert not layout.cdi_spec("u-moved").exists()
    assert not layout.quota_dir("u-moved").exists()
    assert layout.checkpointed() == {}
    assert new.backend.status(new.backend.gpus()[0].uuid).mig_instances == ()


def test_beside_a_plugin_before_0_2_0_the_node_keeps_the_file_it_reads(
    layout: pluginserver.Layout, book: claimbook.ClaimBook
) -> None:
    """A rolling update straight from a release before 0.2.0, which reads only
    ``checkpoint.json`` and leaves no stamp: the new pod, set to the per-claim layout (the
    default), writes that file while the old pod's socket answers, then moves the node to
    ``checkpoint.d`` once the old pod is gone."""
    config = layout.node_config()
    obj = claim("u-old", gpu(0))
    book.add(obj)
    old_claim = model.PreparedClaim(
        uid=model.ClaimUID("u-old"),
        namespace=claimbook.NAMESPACE,
        name="claim-u-old",
        state=model.PrepareState.COMPLETED,
        devices=(
            model.PreparedDevice(
                request_names=("gpu",),
                pool=claimbook.NODE,
                device="gpu-0",
                share_id=None,
                cdi_ids=(),
                gpu_uuid="GPU-of-the-old-pod",
            ),
        ),
    )
    config.plugin_dir.mkdir(parents=True, exist_ok=True)
    store.save(  # as the old pod left it
        config.checkpoint_path,
        model.Checkpoint(boot_id=store.current_boot_id()).with_claim(old_claim),
    )

    def in_the_file() -> set[str]:
        loaded = store.load(config.checkpoint_path, boot_id=store.current_boot_id())
        return set(loaded.checkpoint.claims)

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as old_pod:  # its DRA server
        old_pod.bind(str(layout.dra_socket("old-pod-uid")))
        old_pod.listen()
        with (
            pluginserver.PluginServer(layout, book=book, pod_uid="new-pod-uid") as new,
            pluginserver.Stubs.of(new) as to_new,
        ):
            clash, fresh = claim("u-clash", gpu(0)), claim("u-new", gpu(1))
            book.add(clash)
            book.add(fresh)
            assert prepare(to_new, claimbook.ref(fresh)).error == ""
            assert "already prepared for claim" in prepare(to_new, claimbook.ref(clash)).error
            assert in_the_file() == {"u-old", "u-new"}  # what the old pod reads
            assert list((config.plugin_dir / "checkpoint.d").glob("*.json")) == []

            old_pod.close()  # the old pod is gone
            layout.dra_socket("old-pod-uid").unlink()
            assert to_new.v1.unprepare(claimbook.ref(obj)).claims["u-old"].error == ""
            assert not config.checkpoint_path.exists()
            claim_files = (config.plugin_dir / "checkpoint.d").glob("*.json")
            assert sorted(path.name for path in claim_files) == ["u-new.json"]
            assert layout.checkpointed() == {"u-new": model.PrepareState.COMPLETED}
