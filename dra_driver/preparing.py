"""Prepare and unprepare claims on the node: the flow behind NodePrepareResources (no gRPC here).

Prepare holds the node's lock (``<plugin dir>/serialize.lock``, `atomicfiles.NodeLock`) for the
whole batch, so that two plugin instances (a rolling update) never interleave, and takes the
batch through these steps:

1. a claim already ``PrepareCompleted`` in the checkpoint gets the same answer again (idempotent);
   one left ``PrepareStarted`` by an interrupted prepare is rolled back first;
2. plan each claim, without side effects (`planning`): locate every allocated device on this
   node, refuse a device that another claim holds (this batch's included, except distinct shares
   of a shared device, and admin access), resolve the claim's opaque configs (`api`); check the
   driver root (the container edits of the driver's files, `driverroot`): a driver root that is
   not ready fails the claim here;
3. record every planned claim ``PrepareStarted``: one write of the checkpoint (none if every
   claim is whole GPUs without a sharing config: then the only side effects are files that
   start-up reconciliation removes when no entry owns them, and the record would undo nothing);
4. for each claim: isolate (create MIG instances, apply time-slicing, start MPS daemons or use
   the one already serving the GPU), then write its quota config if it has shares (its claim
   directory), then its CDI spec;
5. record every claim's outcome, ``PrepareCompleted`` with its CDI IDs: one write.

A failure in 2 fails only that claim, before anything was recorded or changed; one in 4 undoes
what was done for that claim and fails only it; a checkpoint that cannot be written in 3 fails
the planned claims before any side effect, in 5 undoes the batch. Either way the message is one
the user sees in the pod's events. Unprepare walks the same path backwards (side effects, then
one write) and is idempotent; an unknown claim is already unprepared. `reconcile` runs at
start-up and cleans what a crash or a reboot left behind.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
from collections.abc import Callable, Sequence

import structlog

from api import devicetypes
from api.v1alpha1 import types
from dra_driver import (
    atomicfiles,
    claims,
    describing,
    failpoints,
    hardware,
    inventory,
    isolating,
    locating,
    planning,
)
from dra_driver.backends import GpuBackend
from dra_driver.backends import errors as backend_errors
from dra_driver.cdi import errors as cdi_errors
from dra_driver.cdi import spec, writing
from dra_driver.checkpoint import errors as checkpoint_errors
from dra_driver.checkpoint import model, store
from dra_driver.driverroot import caching
from dra_driver.isolation import migs, mps, quotas
from dra_driver.slices import settings

log = structlog.get_logger(__name__)

#: What the side effects of prepare and unprepare can raise: the claim fails, the process lives.
_SIDE_EFFECT_ERRORS = (
    backend_errors.BackendError,
    cdi_errors.CdiError,
    checkpoint_errors.CheckpointError,
    mps.MpsError,
    OSError,
    ValueError,
)


@dataclasses.dataclass(frozen=True)
class NodeConfig:
    """Where the node keeps its state and what it publishes."""

    node_name: str
    driver_name: str
    plugin_dir: pathlib.Path
    """``/var/lib/kubelet/plugins/<driver>``: checkpoint, lock, per-claim directories."""
    cdi_dir: pathlib.Path
    publish: settings.PublishSettings
    real_gpus: bool
    """Real GPUs: MPS shm on a tmpfs, the real MPS control command."""
    mps_control: tuple[str, ...] | None = None
    """The MPS control command; default: ``nvidia-cuda-mps-control``, the fake one with fake
    GPUs (``python -m dra_driver.backends.fake.mpscontrol``)."""

    checkpoint_layout: store.Layout = store.Layout.DIRECTORY
    """How the checkpoint is written (it is read in either layout)."""

    mps_ready_timeout: float = mps.READY_TIMEOUT
    """Seconds a new MPS daemon has to answer."""

    preload_library: str | None = None
    """Host path of ``libgpuquota.so``: injected (with a read-only ``/etc/ld.so.preload``) into
    every container of a claim with shares; None: the quota config is written but not enforced."""

    @property
    def preload_list(self) -> pathlib.Path:
        """The ``ld.so.preload`` file mounted into containers: it names the library."""
        return self.plugin_dir / "ld.so.preload"

    @property
    def mps_command(self) -> tuple[str, ...]:
        if self.mps_control is not None:
            return self.mps_control
        if self.real_gpus:
            return ("nvidia-cuda-mps-control",)
        return (sys.executable, "-m", "dra_driver.backends.fake.mpscontrol")

    @property
    def checkpoint_path(self) -> pathlib.Path:
        return self.plugin_dir / "checkpoint.json"

    @property
    def lock_path(self) -> pathlib.Path:
        return self.plugin_dir / "serialize.lock"

    @property
    def claims_root(self) -> pathlib.Path:
        return self.plugin_dir / "claims"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The answer for one claim: its prepared devices, or why it failed."""

    devices: tuple[model.PreparedDevice, ...] = ()
    error: str = ""
    new: bool = dataclasses.field(default=False, compare=False)
    """Prepared by this call (not an earlier one): undo it with `Preparer.unprepare` if the
    caller refuses the claim after all."""


class Preparer:
    def __init__(
        self,
        backend: GpuBackend,
        config: NodeConfig,
        *,
        boot_id: str,
        mps_runner: mps.Runner | None = None,
        driver: caching.Driver | None = None,
        others_serving: Callable[[], bool] = store.nobody_else,
    ) -> None:
        """`others_serving`: whether another plugin instance serves the node now, which may be
        of a release that reads only one checkpoint layout (`store.NodeCheckpoint`)."""
        self.backend = backend
        self.config = config
        self.boot_id = boot_id
        config.plugin_dir.mkdir(parents=True, exist_ok=True)
        self._lock = atomicfiles.NodeLock(config.lock_path)
        self._checkpoint = store.NodeCheckpoint(
            config.plugin_dir,
            boot_id=boot_id,
            lock=self._lock,
            layout=config.checkpoint_layout,
            others_serving=others_serving,
        )
        self._inventory = inventory.Cache(backend, node_name=config.node_name)
        self.ledger = migs.Ledger(config.plugin_dir / "mig-ledger.json")
        self.mps = mps.Daemons(
            config.plugin_dir / "mps",
            control=config.mps_command,
            runner=mps_runner or mps.LocalRunner(),
            ready_timeout=config.mps_ready_timeout,
            tmpfs_shm=config.real_gpus,
        )
        self.isolator = isolating.Isolator(
            backend,
            node_name=config.node_name,
            publish=config.publish,
            daemons=self.mps,
            ledger=self.ledger,
        )
        preload = None
        if config.preload_library is not None:
            atomicfiles.write_bytes(
                config.preload_list, f"{config.preload_library}\n".encode(), mode=0o444
            )
            preload = (config.preload_library, str(config.preload_list))
        self.describer = describing.Describer(
            driver=driver,
            cdi_dir=config.cdi_dir,
            claims_root=config.claims_root,
            preload=preload,
        )

    @property
    def driver(self) -> caching.Driver | None:
        """The driver's files, nodes and hooks for CDI specs (`describing`)."""
        return self.describer.driver

    # -- public flows ---------------------------------------------------------------------

    def prepare(self, batch: Sequence[claims.AllocatedClaim]) -> dict[str, Outcome]:
        """Prepare every claim of `batch`; one claim's failure is its own `Outcome`.

        At most two writes of the checkpoint for the whole batch: every planned claim
        ``PrepareStarted`` before the first side effect (unless nothing would need undoing),
        then every claim's outcome once all are done.
        """
        outcomes: dict[str, Outcome] = {}
        with self._lock:
            loaded = state = self._load()
            changed = False  # an interrupted prepare was rolled back
            jobs: list[_Job] = []
            for claim in batch:
                earlier = state.claims.get(claim.ref.uid)
                changed |= earlier is not None and earlier.state is model.PrepareState.STARTED
                # Every event of this claim's prepare (MIG, MPS, time-slicing, CDI too) names it.
                with structlog.contextvars.bound_contextvars(claim=str(claim.ref)):
                    try:
                        answer, state = self._begin(claim, state)
                    except Exception as exc:  # a bug must fail one claim, never the whole batch
                        outcomes[claim.ref.uid] = _failed(exc)
                        continue
                if isinstance(answer, _Job):
                    jobs.append(answer)
                else:
                    outcomes[claim.ref.uid] = answer
            if state is not loaded and (changed or any(job.undoable for job in jobs)):
                try:
                    self._save(state)
                except checkpoint_errors.CheckpointError as exc:  # a full disk: nothing done yet
                    for job in jobs:
                        error = claims.ClaimError(f"preparing claim {job.claim.ref} failed: {exc}")
                        outcomes[job.claim.ref.uid] = _failed(error)
                    return outcomes
            if jobs:
                failpoints.hit("prepare.started-recorded")
                outcomes |= self._carry_out(jobs, state)
        return outcomes

    def _begin(
        self, claim: claims.AllocatedClaim, state: model.Checkpoint
    ) -> tuple[Outcome | _Job, model.Checkpoint]:
        """The answer of a claim prepared before, or the plan of one to prepare now (recorded as
        ``PrepareStarted`` in the returned state); no side effects but rolling back what an
        interrupted prepare of the same claim left."""
        uid = claim.ref.uid
        existing = state.claims.get(uid)
        if existing is not None and existing.state is model.PrepareState.COMPLETED:
            log.info("claim.prepared", devices=[d.device for d in existing.devices], known=True)
            return Outcome(devices=existing.devices), state
        if existing is not None:
            self._undo(existing, state)
            state = state.without_claim(uid)
        node = self._inventory.current(owned_mig_uuids=state.dynamic_migs.keys())
        plan = self._plan(claim, state, node)
        # A driver root that is not ready fails the claim before any side effect.
        driver = self.describer.common_edits()
        planned = [device for device, _, _ in plan]
        started = _claim(claim.ref, model.PrepareState.STARTED, planned)
        undoable = not all(_only_files(located, config) for _, located, config in plan)
        return _Job(claim, plan, driver, started, undoable), state.with_claim(started)

    def _carry_out(self, jobs: Sequence[_Job], started: model.Checkpoint) -> dict[str, Outcome]:
        """The side effects of every job, then one write of their outcomes."""
        state = started
        done: list[tuple[_Job, tuple[model.PreparedDevice, ...]]] = []
        outcomes: dict[str, Outcome] = {}
        for job in jobs:
            with structlog.contextvars.bound_contextvars(claim=str(job.claim.ref)):
                try:
                    devices = self._isolate_and_describe(job, state)
                except claims.ClaimError as exc:  # undone
                    outcomes[job.claim.ref.uid] = _failed(exc)
                    state = state.without_claim(job.started.uid)
                    continue
                except Exception as exc:  # a bug: left PrepareStarted, rolled back next time
                    outcomes[job.claim.ref.uid] = _failed(exc)
                    continue
            state = state.with_claim(dataclasses.replace(job.started, devices=devices))
            done.append((job, devices))
        completed = state
        for job, devices in done:
            completed = completed.with_claim(
                _claim(job.claim.ref, model.PrepareState.COMPLETED, devices)
            )
        try:
            self._save(completed)
        except checkpoint_errors.CheckpointError as exc:
            for job, _ in reversed(done):
                with structlog.contextvars.bound_contextvars(claim=str(job.claim.ref)):
                    self._undo(state.claims[job.started.uid], state)
                    state = state.without_claim(job.started.uid)
                    error = claims.ClaimError(f"preparing claim {job.claim.ref} failed: {exc}")
                    outcomes[job.claim.ref.uid] = _failed(error)
            self._forget(state, [job.started.uid for job in jobs])
            return outcomes
        failpoints.hit("prepare.completed-recorded")
        for job, devices in done:
            with structlog.contextvars.bound_contextvars(claim=str(job.claim.ref)):
                log.info("claim.prepared", devices=[d.device for d in devices])
            outcomes[job.claim.ref.uid] = Outcome(devices=devices, new=True)
        return outcomes

    def _isolate_and_describe(
        self, job: _Job, state: model.Checkpoint
    ) -> tuple[model.PreparedDevice, ...]:
        """Isolate each device of `job` and write its CDI spec; on a failure undo what was done
        (`state`: what the other claims hold, this batch's included) and raise."""
        done: list[model.PreparedDevice] = []
        instances: list[hardware.MigInstance | None] = []
        planned = job.started.devices
        try:
            for device, located, config in job.plan:
                prepared, instance = self.isolator.isolate(
                    device, located, config, job.claim.ref.uid, state
                )
                done.append(prepared)
                instances.append(instance)
            failpoints.hit("prepare.isolated")
            where = [located for _, located, _ in job.plan]
            final = self.describer.write(job.claim.ref, done, where, instances, job.driver)
            failpoints.hit("prepare.cdi-written")
        except (claims.ClaimError, *_SIDE_EFFECT_ERRORS) as exc:
            self._undo(
                dataclasses.replace(job.started, devices=(*done, *planned[len(done) :])), state
            )
            if isinstance(exc, claims.ClaimError):
                raise
            raise claims.ClaimError(f"preparing claim {job.claim.ref} failed: {exc}") from exc
        return tuple(final)

    def unprepare(self, refs: Sequence[claims.ClaimRef]) -> dict[str, str]:
        """Unprepare every claim of `refs` (an unknown one is already unprepared): side effects
        first, then one write of the checkpoint for the batch."""
        errors: dict[str, str] = {}
        with self._lock:
            loaded = state = self._load()
            undone: list[claims.ClaimRef] = []
            for ref in refs:
                with structlog.contextvars.bound_contextvars(claim=str(ref)):
                    prepared = state.claims.get(ref.uid)
                    try:
                        self._undo(prepared or _nothing(ref), state)
                    except _SIDE_EFFECT_ERRORS as exc:
                        log.error("claim.unprepare_failed", error=str(exc))
                        errors[ref.uid] = f"unprepare of {ref} failed: {exc}"
                        continue
                errors[ref.uid] = ""
                if prepared is not None:
                    state = state.without_claim(ref.uid)
                    undone.append(ref)
                else:
                    with structlog.contextvars.bound_contextvars(claim=str(ref)):
                        log.info("claim.unprepared", known=False)
            if state is not loaded:
                try:
                    self._save(state)
                except checkpoint_errors.CheckpointError as exc:
                    # Undone, but still recorded: the kubelet retries, and undo is idempotent.
                    for ref in undone:
                        errors[ref.uid] = f"unprepare of {ref} failed: {exc}"
                    return errors
            for ref in undone:
                with structlog.contextvars.bound_contextvars(claim=str(ref)):
                    log.info("claim.unprepared", known=True)
        return errors

    def reconcile(self) -> None:
        """Start-up: roll back interrupted prepares, remove what no checkpoint entry owns (CDI
        specs, claim directories, MIG instances this driver created, never an admin's; MPS
        daemons), and adopt the MPS daemons that claims use as they run (never restarted)."""
        with self._lock:
            state = self._load()
            for prepared in list(state.claims.values()):
                if prepared.state is model.PrepareState.STARTED:
                    log.warning("claim.rolled_back", claim=prepared.uid)
                    self._undo(prepared, state)
                    state = state.without_claim(prepared.uid)
            self._save(state)
            migs.destroy_orphans(self.backend, self.ledger, held=set(state.dynamic_migs))
            self.mps.reconcile(_mps_daemons(state))
            owned = set(state.claims)
            for uid in writing.claim_uids_with_specs(self.config.cdi_dir) - owned:
                writing.remove_claim_spec(self.config.cdi_dir, uid)
                log.warning("cdi.orphan_removed", claim=uid)
            writing.remove_temp_files(self.config.cdi_dir)
            for uid in quotas.leftover_claims(self.config.claims_root) - owned:
                quotas.remove(self.config.claims_root, uid)
                log.warning("claim_dir.orphan_removed", claim=uid)

    def prepared(self) -> list[model.PreparedClaim]:
        with self._lock:
            return list(self._load().claims.values())

    def owned_mig_uuids(self) -> set[str]:
        """The MIG instances this driver created for the claims prepared now."""
        with self._lock:
            return set(self._load().dynamic_migs)

    def device_counts(self) -> dict[str, int]:
        """Prepared devices by type (``gpu``, ``mig``, ``shared``), as of this process's last
        read or write of the checkpoint (for metrics; another plugin instance may differ)."""
        counts = {kind.value: 0 for kind in devicetypes.DeviceType}
        for claim in self._last.claims.values():
            for device in claim.devices:
                counts[_device_type(device).value] += 1
        return counts

    def completed_claims(self) -> list[model.PreparedClaim]:
        """The completed claims as of this process's last read or write of the checkpoint (for
        metrics: no lock is taken)."""
        return [
            claim
            for claim in self._last.claims.values()
            if claim.state is model.PrepareState.COMPLETED
        ]

    def shared_claims(self) -> list[tuple[model.PreparedClaim, pathlib.Path]]:
        """Completed claims with shares and their accounting state files, as of this process's
        last read or write of the checkpoint (for metrics: no lock is taken)."""
        return [
            (claim, quotas.claim_dir(self.config.claims_root, claim.uid) / quotas.STATE)
            for claim in self._last.claims.values()
            if claim.state is model.PrepareState.COMPLETED
            and any(device.isolation.quota is not None for device in claim.devices)
        ]

    # -- one claim -----------------------------------------------------------------------

    def _undo(self, prepared: model.PreparedClaim, state: model.Checkpoint) -> None:
        """Release what `prepared` holds (but what another claim of `state` holds too) and remove
        its files; safe to repeat and on half-prepared claims."""
        self.isolator.release(prepared, state)
        self.describer.remove(prepared.uid)

    def _forget(self, state: model.Checkpoint, uids: Sequence[model.ClaimUID]) -> None:
        """Record that failed prepares left nothing. If even that cannot be written (a full
        disk), the file keeps them ``PrepareStarted``, which the next prepare or start-up rolls
        back again (undo is idempotent)."""
        for uid in uids:
            state = state.without_claim(uid)
        try:
            self._save(state)
        except checkpoint_errors.CheckpointError as exc:
            log.warning("claim.rollback_not_recorded", claims=list(uids), error=str(exc))

    def _plan(
        self, claim: claims.AllocatedClaim, state: model.Checkpoint, node: inventory.Inventory
    ) -> list[tuple[model.PreparedDevice, locating.LocatedDevice, types.Config | None]]:
        """Each device to prepare, where it is, and its config; no side effects."""
        entries = planning.decode_configs(claim, driver=self.config.driver_name)
        planned = []
        for allocated in claim.devices:
            if allocated.pool != self.config.node_name:
                raise claims.ClaimError(
                    f"device {allocated.device} of claim {claim.ref} is from pool "
                    f"{allocated.pool!r}; this node publishes pool {self.config.node_name!r}"
                )
            located = planning.locate(allocated.device, node, self.config.publish)
            config = planning.config_for(entries, allocated, located)
            planning.check_free(allocated, claim.ref, state)
            isolation = model.NO_ISOLATION
            if located.type is devicetypes.DeviceType.MIG:
                origin = model.MigOrigin.STATIC if located.admin_mig else model.MigOrigin.DYNAMIC
                isolation = model.Isolation(mig=origin)
            device = model.PreparedDevice(
                request_names=(allocated.base_request,),
                pool=allocated.pool,
                device=allocated.device,
                share_id=allocated.share_id,
                cdi_ids=(),
                gpu_uuid=located.gpu.uuid,
                admin_access=allocated.admin_access,
                consumed_capacity=dict(allocated.consumed_capacity),
                isolation=isolation,
            )
            planned.append((device, located, config))
        return planned

    # -- checkpoint ----------------------------------------------------------------------

    @property
    def _last(self) -> model.Checkpoint:
        """The checkpoint as of this process's last read or write (no lock taken)."""
        return self._checkpoint.checkpoint

    def _load(self) -> model.Checkpoint:
        return self._checkpoint.load()

    def _save(self, state: model.Checkpoint) -> None:
        self._checkpoint.save(state)


def _device_type(device: model.PreparedDevice) -> devicetypes.DeviceType:
    if device.isolation.mig is not None:
        return devicetypes.DeviceType.MIG
    if device.isolation.quota is not None:
        return devicetypes.DeviceType.SHARED
    return devicetypes.DeviceType.GPU


def _mps_daemons(state: model.Checkpoint) -> set[str]:
    """The MPS daemons that the claims of `state` use."""
    return {
        device.isolation.mps.daemon
        for claim in state.claims.values()
        for device in claim.devices
        if device.isolation.mps is not None
    }


def _claim(
    ref: claims.ClaimRef, state: model.PrepareState, devices: Sequence[model.PreparedDevice]
) -> model.PreparedClaim:
    return model.PreparedClaim(
        uid=model.ClaimUID(ref.uid),
        namespace=ref.namespace,
        name=ref.name,
        state=state,
        devices=tuple(devices),
    )


def _nothing(ref: claims.ClaimRef) -> model.PreparedClaim:
    return _claim(ref, model.PrepareState.STARTED, ())


@dataclasses.dataclass(frozen=True)
class _Job:
    """A claim planned in a batch, waiting for its side effects."""

    claim: claims.AllocatedClaim
    plan: list[tuple[model.PreparedDevice, locating.LocatedDevice, types.Config | None]]
    driver: spec.ContainerEdits
    """The driver's part of the claim's CDI spec."""
    started: model.PreparedClaim
    """Its ``PrepareStarted`` record: the planned devices."""
    undoable: bool
    """Its side effects include some that only the record can undo (not `_only_files`)."""


def _only_files(located: locating.LocatedDevice, config: types.Config | None) -> bool:
    """Whether preparing the device changes nothing but files that start-up reconciliation removes
    when no checkpoint entry owns them (its CDI spec, its claim directory): a whole GPU without a
    sharing config. A crash before its claim is recorded ``PrepareCompleted`` then leaves only
    such orphans, so its ``PrepareStarted`` record would undo nothing and need not be written."""
    return located.type is devicetypes.DeviceType.GPU and (config is None or config.sharing is None)


def _failed(exc: Exception) -> Outcome:
    """The outcome of a claim whose prepare raised `exc` (logged here)."""
    if isinstance(exc, claims.ClaimError):
        log.warning("claim.prepare_failed", error=str(exc))
        return Outcome(error=str(exc))
    log.error("claim.prepare_crashed", exc_info=exc)
    return Outcome(error=f"internal error: {exc!r}")
