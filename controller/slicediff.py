"""What to write so that the API server's slices of one pool equal the desired ones (pure).

The rules of the Go ``resourceslice`` controller (``k8s.io/dynamic-resource-allocation``'s
``resourceslice`` package, which Go drivers such as the DRA example driver publish with):

1. Of the existing slices of the pool, those of the highest generation are current; slices of a
   lower generation are obsolete.
2. Desired slice ``i`` matches the current slice whose name starts with its prefix
   ``<i as 5-digit hex>-<driver>-<node>-`` (the ``generateName``); unmatched slices are obsolete.
3. A matched slice has changed if its spec differs from the desired one.
4. Generation: the current one is kept if no slice must be created and at most one changed;
   otherwise it goes up by one and every slice is rewritten (consumers only trust a pool whose
   slices all carry the newest generation and add up to ``resourceSliceCount``).
5. Order of the writes: deletes of obsolete slices (with UID and resourceVersion preconditions),
   then updates, then creates.

Nothing changed, nothing to write: a re-publish of the same pool makes no request but the list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from dra_driver.slices import splitting

Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Target:
    """The pool a node publishes: where, and under which owner."""

    driver: str
    node_name: str
    pool: str
    owner: Obj | None = None
    """Owner reference (the Node) so the slices go with the Node."""

    def prefix(self, index: int) -> str:
        return f"{index:05x}-{self.driver}-{self.node_name}-"


@dataclasses.dataclass(frozen=True)
class Plan:
    generation: int
    deletes: tuple[Obj, ...] = ()
    """Existing slices to delete (their metadata carries the preconditions)."""
    updates: tuple[Obj, ...] = ()
    """Full objects to PUT (existing metadata, new spec)."""
    creates: tuple[Obj, ...] = ()

    @property
    def writes(self) -> int:
        return len(self.deletes) + len(self.updates) + len(self.creates)


def plan(
    desired: Sequence[splitting.SliceContent],
    existing: Sequence[Obj],
    target: Target,
    *,
    stored_form: Callable[[Obj], Obj] = lambda spec: spec,
) -> Plan:
    """The writes that make `existing` (this pool's slices on the server) equal `desired`.

    `stored_form` maps a spec we would send to the form the server stores it in (learned from
    earlier writes), so a server that normalizes or drops fields causes no endless updates.
    """
    ours = [s for s in existing if s["spec"]["pool"]["name"] == target.pool]
    generation = max((s["spec"]["pool"]["generation"] for s in ours), default=0)
    current = [s for s in ours if s["spec"]["pool"]["generation"] == generation]
    obsolete = [s for s in ours if s["spec"]["pool"]["generation"] != generation]
    matched: list[Obj | None] = []
    for index in range(len(desired)):
        candidates = [s for s in current if s["metadata"]["name"].startswith(target.prefix(index))]
        candidates.sort(key=lambda s: s["metadata"]["name"])
        matched.append(candidates[0] if candidates else None)
        obsolete += candidates[1:]
    taken = {id(s) for s in matched if s is not None}
    obsolete += [s for s in current if id(s) not in taken]

    def specs(gen: int) -> list[Obj]:
        return [
            dict(spec)
            for spec in splitting.specs(
                list(desired),
                driver=target.driver,
                node_name=target.node_name,
                pool=target.pool,
                generation=gen,
            )
        ]

    wanted = specs(max(generation, 1))
    changed = [
        i
        for i, slice_ in enumerate(matched)
        if slice_ is not None and stored_form(wanted[i]) != slice_["spec"]
    ]
    missing = [i for i, slice_ in enumerate(matched) if slice_ is None]
    if generation == 0 or missing or len(changed) > 1:
        generation += 1
        wanted = specs(generation)
        changed = [i for i, slice_ in enumerate(matched) if slice_ is not None]
    return Plan(
        generation=generation,
        deletes=tuple(obsolete),
        updates=tuple(
            _updated(matched_slice, wanted[i])
            for i in changed
            if (matched_slice := matched[i]) is not None
        ),
        creates=tuple(_new(target, i, wanted[i]) for i in missing),
    )


def _updated(existing: Obj, spec: Obj) -> Obj:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": existing["metadata"],
        "spec": spec,
    }


def _new(target: Target, index: int, spec: Obj) -> Obj:
    metadata: Obj = {"generateName": target.prefix(index)}
    if target.owner is not None:
        metadata["ownerReferences"] = [target.owner]
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": metadata,
        "spec": spec,
    }
