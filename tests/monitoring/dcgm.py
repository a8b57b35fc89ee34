"""dcgm-exporter's exposition text, as its template writes it, for the GPUs a test names.

The labels and their order are those of dcgm-exporter's metric template: ``gpu``, ``UUID`` (the
physical GPU's, on a MIG device's series too), ``pci_bus_id``, ``device``, ``modelName``, then
``GPU_I_PROFILE`` and ``GPU_I_ID`` for a MIG device, and ``Hostname``. A MIG-enabled GPU has
series of its own (no ``GPU_I_ID``) beside those of its MIG devices.
"""

from __future__ import annotations

from typing import Any


def exposition(gpus: list[dict[str, Any]]) -> str:
    """dcgm-exporter's text for `gpus` (each: index, uuid, model, bus, fb_used, and the MIG
    instances on it as (GPU instance ID, profile, fb_used))."""
    lines = [
        "# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).",
        "# TYPE DCGM_FI_DEV_FB_USED gauge",
    ]
    for gpu in gpus:
        common = (
            f'gpu="{gpu["index"]}",UUID="{gpu["uuid"]}",pci_bus_id="{gpu["bus"]}",'
            f'device="nvidia{gpu["index"]}",modelName="{gpu["model"]}"'
        )
        lines.append(f'DCGM_FI_DEV_FB_USED{{{common},Hostname="node-a"}} {gpu["fb_used"]}')
        for gi, profile, used in gpu["migs"]:
            mig = f'GPU_I_PROFILE="{profile}",GPU_I_ID="{gi}"'
            lines.append(f'DCGM_FI_DEV_FB_USED{{{common},{mig},Hostname="node-a"}} {used}')
    return "\n".join(lines) + "\n"
