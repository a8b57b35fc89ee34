"""The checkpoint's internal model: prepared claims and their devices, independent of any file format.

The prepare flow builds these values; `v1` (and any later version) converts them to and from JSON.
Everything is immutable, so a `Checkpoint` can be handed around and compared freely: a change is a
new value (`Checkpoint.with_claim`, `Checkpoint.without_claim`, `dataclasses.replace`).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from typing import TypeVar, overload

from dra_driver import claims, hardware

ClaimUID = claims.ClaimUID  # one identifier type for the whole driver

_K = TypeVar("_K")
_V = TypeVar("_V")
_T = TypeVar("_T")


class FrozenMap(Mapping[_K, _V]):
    """An immutable, hashable mapping (equal to any mapping with the same items)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[_K, _V] | Iterable[tuple[_K, _V]] = ()) -> None:
        self._items: dict[_K, _V] = dict(items)

    @classmethod
    def _wrap(cls, items: dict[_K, _V]) -> FrozenMap[_K, _V]:
        """A map of `items` itself, not a copy: for a dict nobody else holds."""
        wrapped = cls.__new__(cls)
        wrapped._items = items
        return wrapped

    def __getitem__(self, key: _K) -> _V:
        return self._items[key]

    def __iter__(self) -> Iterator[_K]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    # The dict's own lookup: `Mapping.get` goes through `__getitem__` and an exception.
    @overload
    def get(self, key: _K, /) -> _V | None: ...

    @overload
    def get(self, key: _K, default: _V | _T, /) -> _V | _T: ...

    def get(self, key: _K, default: object = None, /) -> object:
        return self._items.get(key, default)

    # The dict's own views: `Mapping`'s would look every key up again (a node's checkpoint is
    # walked on every prepare).
    def keys(self) -> KeysView[_K]:
        return self._items.keys()

    def values(self) -> ValuesView[_V]:
        return self._items.values()

    def items(self) -> ItemsView[_K, _V]:
        return self._items.items()

    def thawed(self) -> dict[_K, _V]:
        """A new dict of the items: the dict's own copy (``dict(self)`` and ``dict(self.items())``
        take the generic path, about nine times slower)."""
        return self._items.copy()

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


_NO_STRINGS: FrozenMap[str, str] = FrozenMap()


def _thawed(items: Mapping[_K, _V]) -> dict[_K, _V]:
    """A new dict of `items`, fast for a `FrozenMap`."""
    return items.thawed() if isinstance(items, FrozenMap) else dict(items)


class MigOrigin(enum.Enum):
    """Who made a device's MIG instance, which decides whether unprepare destroys it."""

    STATIC = "static"
    """An admin's (or admin access to one): left as it is."""
    DYNAMIC = "dynamic"
    """Created at prepare: destroyed when no claim holds the device any more (admin access
    shares it with a user's claim)."""


@dataclasses.dataclass(frozen=True)
class Quota:
    """A share's limits, enforced in its containers by the quota library (and MPS)."""

    memory_bytes: int
    """GPU memory the share's processes may allocate, all together."""
    cores: int
    """Percent of the GPU's multiprocessors (0: no limit)."""

    def __post_init__(self) -> None:
        if self.memory_bytes < 0 or self.cores < 0:
            raise ValueError(f"a quota is not negative: {self}")


@dataclasses.dataclass(frozen=True)
class MpsAttachment:
    """The MPS control daemon that serves a device's containers."""

    daemon: str
    """The daemon's ID (``gpu-2`` for a GPU's shares, ``claim-<uid>-<device>`` for an MpsConfig)."""
    pipe_dir: str
    """The daemon's pipe directory on the host, mounted into the containers."""
    shm_dir: str | None
    """The daemon's ``/dev/shm`` on the host, mounted as the containers' (None: recorded before
    daemons had their own)."""
    exclusive: bool
    """Prepare set the GPU to exclusive-process mode; the last user's unprepare resets it."""


@dataclasses.dataclass(frozen=True)
class Isolation:
    """What the isolation managers did for one device, each part None where nothing was done."""

    mig: MigOrigin | None = None
    """Set for MIG devices."""
    time_slice: hardware.TimesliceInterval | None = None
    """The interval applied to the whole GPU; unprepare resets it to the default."""
    quota: Quota | None = None
    """Set for shares."""
    mps: MpsAttachment | None = None
    unknown: Mapping[str, str] = _NO_STRINGS
    """Entries this build does not know (written by another build), kept as they are so that
    rewriting the checkpoint loses nothing; nothing acts on them."""

    def __post_init__(self) -> None:
        if not isinstance(self.unknown, FrozenMap):  # a FrozenMap is immutable: share it
            object.__setattr__(self, "unknown", FrozenMap(self.unknown))


NO_ISOLATION = Isolation()


class PrepareState(enum.Enum):
    """How far the preparation of a claim got."""

    STARTED = "PrepareStarted"
    """Side effects may have begun (MIG instance, MPS daemon, ...): roll back before retrying."""
    COMPLETED = "PrepareCompleted"
    """The CDI spec exists and the CDI IDs went back to the kubelet."""


@dataclasses.dataclass(frozen=True)
class PreparedDevice:
    """One allocated device of a claim, as prepared on this node."""

    request_names: tuple[str, ...]
    """Base request names (subrequest suffix stripped: ``gpu/mig-1g`` is ``gpu``)."""
    pool: str
    device: str
    """Device name in the pool: ``gpu-0``, ``gpu-0-mig-1g5gb-3``, ``gpu-0-shared``."""
    share_id: str | None
    """The allocation result's shareID (multi-allocatable devices), else None."""
    cdi_ids: tuple[str, ...]
    """Fully qualified CDI device IDs returned to the kubelet."""
    gpu_uuid: str
    """The physical GPU."""
    mig_uuid: str | None = None
    """The MIG device's UUID (static, or created at prepare)."""
    mig_gpu_instance_id: int | None = None
    """The GPU instance we created at prepare, so unprepare (or start-up clean-up) can destroy it."""
    admin_access: bool = False
    consumed_capacity: Mapping[str, str] = _NO_STRINGS
    """Capacity name → quantity string, for shares of multi-allocatable devices."""
    isolation: Isolation = NO_ISOLATION
    """What was done to isolate it (MIG instance, time slice, quota, MPS daemon)."""

    def __post_init__(self) -> None:
        # Copy caller-owned mappings so that nobody can change a device after the fact.
        object.__setattr__(self, "consumed_capacity", FrozenMap(self.consumed_capacity))


@dataclasses.dataclass(frozen=True)
class PreparedClaim:
    """A claim this node prepared (or started to prepare)."""

    uid: ClaimUID
    namespace: str
    name: str
    state: PrepareState
    devices: tuple[PreparedDevice, ...]


HISTORY = 8
"""How many `Checkpoint.with_claim`/`without_claim` calls back `Checkpoint.changed_since` sees."""

DeviceKey = tuple[str, str]
"""A device by its pool and name."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """Every claim prepared on this node since boot `boot_id`, keyed by claim UID.

    Two indexes come with it, kept up to date by `with_claim` and `without_claim` one claim at a
    time, so that a question about one device does not walk a thousand claims: `holders` and
    `dynamic_migs`. They are derived: not compared, not written to any file. So is the history of
    a checkpoint made by those two: which claims changed since an earlier one (`changed_since`),
    so that saving it writes those claims without comparing the others. It goes back `HISTORY`
    calls at most: every step keeps its copy of the claims alive (a batch of 64 claims on a node
    holding a thousand would keep megabytes), and a longer way is compared claim by claim.
    """

    boot_id: str
    claims: Mapping[ClaimUID, PreparedClaim] = dataclasses.field(
        default_factory=FrozenMap[ClaimUID, PreparedClaim]
    )
    holders: Mapping[DeviceKey, tuple[ClaimUID, ...]] = dataclasses.field(
        init=False, repr=False, compare=False
    )
    """Each prepared device (pool, name) and the claims that hold it, in the order they came."""
    dynamic_migs: Mapping[str, int] = dataclasses.field(init=False, repr=False, compare=False)
    """The UUID of each MIG device created at prepare, and how many devices of claims hold it."""
    _parent: Checkpoint | None = dataclasses.field(
        init=False, repr=False, compare=False, default=None
    )
    """The checkpoint this one was made from by one `with_claim` or `without_claim`."""
    _changed: ClaimUID | None = dataclasses.field(
        init=False, repr=False, compare=False, default=None
    )
    """The claim that call added, replaced or removed."""
    _depth: int = dataclasses.field(init=False, repr=False, compare=False, default=0)
    """How many such calls `_parent` leads back through (each holds a copy of the claims)."""

    def __post_init__(self) -> None:
        claims = FrozenMap(self.claims)
        holders: dict[DeviceKey, tuple[ClaimUID, ...]] = {}
        migs: dict[str, int] = {}
        for uid, claim in claims.items():
            if uid != claim.uid:
                raise ValueError(f"claim {claim.uid!r} is filed under the UID {uid!r}")
            _index(claim, holders, migs, +1)
        object.__setattr__(self, "claims", claims)
        object.__setattr__(self, "holders", FrozenMap._wrap(holders))
        object.__setattr__(self, "dynamic_migs", FrozenMap._wrap(migs))

    def with_claim(self, claim: PreparedClaim) -> Checkpoint:
        """A copy with `claim` added, or replacing the claim with the same UID."""
        claims = _thawed(self.claims)
        holders, migs = _thawed(self.holders), _thawed(self.dynamic_migs)
        earlier = claims.get(claim.uid)
        if earlier is not None:
            _index(earlier, holders, migs, -1)
        claims[claim.uid] = claim
        _index(claim, holders, migs, +1)
        return self._derived(claims, holders, migs, changed=claim.uid)

    def without_claim(self, uid: ClaimUID) -> Checkpoint:
        """A copy without the claim `uid` (unchanged if it is not there)."""
        if uid not in self.claims:
            return self
        claims = _thawed(self.claims)
        holders, migs = _thawed(self.holders), _thawed(self.dynamic_migs)
        _index(claims.pop(uid), holders, migs, -1)
        return self._derived(claims, holders, migs, changed=uid)

    def changed_since(self, base: Checkpoint) -> set[ClaimUID] | None:
        """The UIDs of the claims added, replaced or removed on the way from `base` to this
        checkpoint, through `with_claim` and `without_claim` (one step per call); None if this
        checkpoint was not made from `base` so (then only comparing the claims tells)."""
        changed: set[ClaimUID] = set()
        step: Checkpoint = self
        while step.claims is not base.claims:
            if step._parent is None or step._changed is None:
                return None
            changed.add(step._changed)
            step = step._parent
        return changed

    def without_history(self) -> Checkpoint:
        """The same checkpoint, forgetting what it was made from (what a writer keeps once it
        is saved: the history of every earlier checkpoint would otherwise stay in memory).
        `changed_since` it still works: it compares the claims' mapping, which this shares."""
        return _assemble(self.boot_id, self.claims, self.holders, self.dynamic_migs, None, None, 0)

    def _derived(
        self,
        claims: dict[ClaimUID, PreparedClaim],
        holders: dict[DeviceKey, tuple[ClaimUID, ...]],
        migs: dict[str, int],
        *,
        changed: ClaimUID,
    ) -> Checkpoint:
        """A checkpoint of this boot with these claims and their indexes, checked one claim at a
        time by the caller (`__post_init__` would walk every claim again), made from this one by
        changing the claim `changed`."""
        depth = self._depth + 1
        return _assemble(
            self.boot_id,
            FrozenMap._wrap(claims),
            FrozenMap._wrap(holders),
            FrozenMap._wrap(migs),
            self if depth <= HISTORY else None,
            changed,
            depth if depth <= HISTORY else 0,
        )


def _assemble(
    boot_id: str,
    claims: Mapping[ClaimUID, PreparedClaim],
    holders: Mapping[DeviceKey, tuple[ClaimUID, ...]],
    migs: Mapping[str, int],
    parent: Checkpoint | None,
    changed: ClaimUID | None,
    depth: int,
) -> Checkpoint:
    """A `Checkpoint` of these fields as they are (no checks, no copies)."""
    checkpoint = object.__new__(Checkpoint)
    for name, value in (
        ("boot_id", boot_id),
        ("claims", claims),
        ("holders", holders),
        ("dynamic_migs", migs),
        ("_parent", parent),
        ("_changed", changed),
        ("_depth", depth),
    ):
        object.__setattr__(checkpoint, name, value)
    return checkpoint


def _index(
    claim: PreparedClaim,
    holders: dict[DeviceKey, tuple[ClaimUID, ...]],
    migs: dict[str, int],
    sign: int,
) -> None:
    """Add `claim`'s devices to the indexes (`sign` +1), or take them out (-1)."""
    for device in claim.devices:
        key = (device.pool, device.device)
        held = holders.get(key, ())
        if sign > 0:
            if claim.uid not in held:
                holders[key] = (*held, claim.uid)
        else:
            rest = tuple(uid for uid in held if uid != claim.uid)
            if rest:
                holders[key] = rest
            else:
                holders.pop(key, None)
        if device.mig_uuid and device.isolation.mig is MigOrigin.DYNAMIC:
            count = migs.get(device.mig_uuid, 0) + sign
            if count > 0:
                migs[device.mig_uuid] = count
            else:
                migs.pop(device.mig_uuid, None)
