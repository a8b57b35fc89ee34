"""Hypothesis strategies for checkpoints: any value the model can hold, unicode included."""

from __future__ import annotations

from hypothesis import strategies as st

from dra_driver import hardware
from dra_driver.checkpoint import model

texts = st.text(max_size=12)
string_maps = st.dictionaries(texts, texts, max_size=3)

# Keys another build may have written: any text but the keys of the typed parts.
TYPED_KEYS = frozenset(
    ("mig", "timeslice", "memoryLimit", "cores", "mpsDaemon", "mpsPipe", "mpsShm", "mpsExclusive")
)
unknown_entries = st.dictionaries(
    texts.filter(lambda key: key not in TYPED_KEYS), texts, max_size=2
)
quotas = st.builds(model.Quota, memory_bytes=st.integers(0, 2**70), cores=st.integers(0, 100))
mps_attachments = st.builds(
    model.MpsAttachment,
    daemon=texts,
    pipe_dir=texts,
    shm_dir=st.none() | texts,
    exclusive=st.booleans(),
)
isolations = st.builds(
    model.Isolation,
    mig=st.none() | st.sampled_from(model.MigOrigin),
    time_slice=st.none() | st.sampled_from(hardware.TimesliceInterval),
    quota=st.none() | quotas,
    mps=st.none() | mps_attachments,
    unknown=unknown_entries,
)

devices = st.builds(
    model.PreparedDevice,
    request_names=st.lists(texts, max_size=3).map(tuple),
    pool=texts,
    device=texts,
    share_id=st.none() | texts,
    cdi_ids=st.lists(texts, max_size=3).map(tuple),
    gpu_uuid=texts,
    mig_uuid=st.none() | texts,
    mig_gpu_instance_id=st.none() | st.integers(-(2**63), 2**63),
    admin_access=st.booleans(),
    consumed_capacity=string_maps,
    isolation=isolations,
)


@st.composite
def claims(draw: st.DrawFn) -> model.PreparedClaim:
    return model.PreparedClaim(
        uid=model.ClaimUID(draw(texts)),
        namespace=draw(texts),
        name=draw(texts),
        state=draw(st.sampled_from(model.PrepareState)),
        devices=tuple(draw(st.lists(devices, max_size=3))),
    )


@st.composite
def checkpoints(draw: st.DrawFn) -> model.Checkpoint:
    checkpoint = model.Checkpoint(boot_id=draw(texts))
    for claim in draw(st.lists(claims(), max_size=4)):
        checkpoint = checkpoint.with_claim(claim)
    return checkpoint
