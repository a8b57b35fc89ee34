"""GPU models the fake backend can pretend to be, with their real MIG profile tables.

Numbers come from ``nvidia-smi mig -lgip``/``-lgipp`` output and the profile tables of NVIDIA's
MIG User Guide. Where those give no figure, the value is an estimate and is marked
``# unverified``: placements and memory-slice geometry (what decides which MIG slices can
coexist) are verified for A100 and H100; engine counts and some H200 sizes are not.
"""

from __future__ import annotations

import dataclasses

from dra_driver import hardware

MIB = hardware.MIB


@dataclasses.dataclass(frozen=True)
class GpuModel:
    """A product the fake backend can emulate."""

    name: str
    """The name used in ``fake:<count>x<name>`` specs."""
    product_name: str
    brand: str
    architecture: str
    cuda_compute_capability: str
    memory_bytes: int
    multiprocessors: int
    mig_profiles: tuple[hardware.MigProfile, ...] = ()


def _profile(
    name: str,
    profile_id: int,
    *,
    max_instances: int,
    memory_mib: int,
    sms: int,
    engines: tuple[int, int, int, int, int],
    starts: tuple[int, ...],
    size: int,
) -> hardware.MigProfile:
    copy_engines, decoders, encoders, jpeg, ofa = engines
    return hardware.MigProfile(
        name=name,
        profile_id=profile_id,
        compute_slices=int(name.split("g.", 1)[0]),
        max_instances=max_instances,
        memory_bytes=memory_mib * MIB,
        multiprocessors=sms,
        copy_engines=copy_engines,
        decoders=decoders,
        encoders=encoders,
        jpeg_engines=jpeg,
        ofa_engines=ofa,
        placements=tuple(hardware.Placement(start, size) for start in starts),
    )


_ALL7 = (0, 1, 2, 3, 4, 5, 6)


def _mig_table(
    names: tuple[str, str, str, str, str, str, str],
    memory_mib: tuple[int, int, int, int, int, int, int],
    sms: tuple[int, int, int, int, int, int, int],
    engines: tuple[tuple[int, int, int, int, int], ...],
) -> tuple[hardware.MigProfile, ...]:
    """The seven GI profiles every A100/H100/H200 has, in the same geometry.

    Order of the tuples: 1g, 1g+me, 1g (2 memory slices), 2g, 3g, 4g, 7g.
    """
    ids = (19, 20, 15, 14, 9, 5, 0)
    max_instances = (7, 1, 4, 3, 2, 1, 1)
    starts = (_ALL7, _ALL7, (0, 2, 4, 6), (0, 2, 4), (0, 4), (0,), (0,))
    sizes = (1, 1, 2, 2, 4, 4, 8)
    return tuple(
        _profile(
            names[k],
            ids[k],
            max_instances=max_instances[k],
            memory_mib=memory_mib[k],
            sms=sms[k],
            engines=engines[k],
            starts=starts[k],
            size=sizes[k],
        )
        for k in range(7)
    )


# Engines per profile: (copy engines, NVDEC, NVENC, NVJPG, OFA).
_A100_ENGINES = ((1, 0, 0, 0, 0), (1, 1, 0, 1, 1), (1, 1, 0, 0, 0), (2, 1, 0, 0, 0),
                 (3, 2, 0, 0, 0), (4, 2, 0, 0, 0), (7, 5, 0, 1, 1))  # fmt: skip
_HOPPER_ENGINES = ((1, 1, 0, 1, 0), (1, 1, 0, 1, 1), (1, 1, 0, 1, 0), (2, 2, 0, 2, 0),
                   (3, 3, 0, 3, 0), (4, 4, 0, 4, 0), (8, 7, 0, 7, 1))  # fmt: skip  # unverified

MODELS: dict[str, GpuModel] = {
    model.name: model
    for model in (
        GpuModel(
            name="A100-40GB",
            product_name="NVIDIA A100-SXM4-40GB",
            brand="Nvidia",
            architecture="Ampere",
            cuda_compute_capability="8.0",
            memory_bytes=40960 * MIB,
            multiprocessors=108,
            mig_profiles=_mig_table(
                ("1g.5gb", "1g.5gb+me", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"),
                (4864, 4864, 9856, 9856, 19968, 19968, 40192),
                (14, 14, 14, 28, 42, 56, 98),
                _A100_ENGINES,
            ),
        ),
        GpuModel(
            name="A100-80GB",
            product_name="NVIDIA A100-SXM4-80GB",
            brand="Nvidia",
            architecture="Ampere",
            cuda_compute_capability="8.0",
            memory_bytes=81920 * MIB,
            multiprocessors=108,
            mig_profiles=_mig_table(
                ("1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
                (9728, 9728, 19968, 19968, 40192, 40192, 80640),  # 1g.20gb, 2g, 4g: unverified
                (14, 14, 14, 28, 42, 56, 98),
                _A100_ENGINES,
            ),
        ),
        GpuModel(
            name="H100-80GB",
            product_name="NVIDIA H100 80GB HBM3",
            brand="Nvidia",
            architecture="Hopper",
            cuda_compute_capability="9.0",
            memory_bytes=81559 * MIB,
            multiprocessors=132,
            mig_profiles=_mig_table(
                ("1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
                (9984, 9984, 20096, 20096, 40448, 40448, 81152),  # 2g, 4g: unverified
                (16, 16, 26, 32, 60, 64, 132),
                _HOPPER_ENGINES,
            ),
        ),
        GpuModel(
            name="H200-141GB",
            product_name="NVIDIA H200",
            brand="Nvidia",
            architecture="Hopper",
            cuda_compute_capability="9.0",
            memory_bytes=143771 * MIB,
            multiprocessors=132,
            mig_profiles=_mig_table(
                ("1g.18gb", "1g.18gb+me", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"),
                (16384, 16384, 33280, 33280, 66560, 66560, 143360),  # 1g.35gb, 3g, 4g: unverified
                (16, 16, 26, 32, 60, 64, 132),  # 1g.35gb, 3g, 4g: unverified
                _HOPPER_ENGINES,
            ),
        ),
        GpuModel(
            name="L4",
            product_name="NVIDIA L4",
            brand="Nvidia",
            architecture="Ada Lovelace",
            cuda_compute_capability="8.9",
            memory_bytes=23034 * MIB,
            multiprocessors=58,
        ),
        GpuModel(
            name="T4",
            product_name="Tesla T4",
            brand="Tesla",
            architecture="Turing",
            cuda_compute_capability="7.5",
            memory_bytes=15360 * MIB,
            multiprocessors=40,
        ),
    )
}

#: What the fake NVML reports for the host driver.
DRIVER_VERSION = "560.35.03"
CUDA_DRIVER_VERSION = "12.6"
