"""The terminal picture of an occupancy map (colour on a terminal, plain text otherwise).

Per node a header with the count of GPUs by what they serve, then per GPU one line (index,
serving, model, memory and SMs, health) and what it serves: the holder of the whole GPU; the MIG
memory slices as a row of cells, each placement drawn across the slices it covers, with the held
placements and what still fits below; or the shares, memory and cores as bars against the GPU's
capacity, one line per share with its usage where metrics were read. ``wide`` adds UUIDs, share
IDs, requests and pod phases.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

from api import quantities
from cli import occupancy

CELL = 8
"""Characters per memory slice in the MIG row."""
BAR = 40

_LABELS = {
    occupancy.Serving.WHOLE: "whole",
    occupancy.Serving.MIG: "MIG",
    occupancy.Serving.SHARES: "shared",
    occupancy.Serving.FREE: "free",
}
_CODES = {
    "free": "32",
    "whole": "35",
    "mig": "36",
    "shares": "33",
    "bad": "1;31",
    "dim": "2",
    "bold": "1",
}


@dataclasses.dataclass(frozen=True)
class Style:
    color: bool = False
    wide: bool = False

    def paint(self, text: str, role: str) -> str:
        if not self.color or not text:
            return text
        return f"\x1b[{_CODES[role]}m{text}\x1b[0m"


def draw(snapshot: occupancy.Map, style: Style) -> str:
    """The whole picture, ending in a newline."""
    lines: list[str] = []
    for node in snapshot.nodes:
        if lines:
            lines.append("")
        lines += _node(node, style)
    if not snapshot.nodes:
        lines.append(f"no GPUs of driver {snapshot.driver} found")
    lines += [f"note: {note}" for note in snapshot.notes]
    return "\n".join(lines) + "\n"


def _node(node: occupancy.Node, style: Style) -> Iterator[str]:
    counts = {s: sum(g.serving is s for g in node.gpus) for s in occupancy.Serving}
    summary = ", ".join(f"{n} {_LABELS[s]}" for s, n in counts.items() if n)
    pool = f"  pool {node.pool}" if style.wide and node.pool != node.name else ""
    yield f"{style.paint(node.name, 'bold')}  {len(node.gpus)} GPUs: {summary}{pool}"
    previous: list[str] = []
    for gpu in node.gpus:
        block = list(_gpu(gpu, style))
        if len(block) > 1 or len(previous) != 1:  # one-line GPUs (free ones) stay together
            yield ""
        yield from block
        previous = block


def _gpu(gpu: occupancy.Gpu, style: Style) -> Iterator[str]:
    serving = style.paint(gpu.serving.value.upper().ljust(6), gpu.serving.value)
    size = f"{_bytes(gpu.memory_bytes)}, {gpu.multiprocessors} SMs"
    health = (
        style.paint(f"UNHEALTHY: {gpu.health_reason}", "bad")
        if gpu.health is occupancy.Health.UNHEALTHY
        else ""
    )
    uuid = gpu.uuid if style.wide else ""
    yield _join(f"  GPU {gpu.index}", serving, gpu.product, size, uuid, health)
    for holder in gpu.whole:
        yield _join(f"    {gpu.whole_device}", _holder(holder, style))
    if gpu.mig is not None and gpu.mig.held:
        yield from _mig(gpu.mig, style)
    if gpu.shares is not None and gpu.shares.shares:
        yield from _shares(gpu.shares, style)
    if gpu.serving is occupancy.Serving.FREE and style.wide:
        yield _join("    fits", _free(gpu))
    for taint in gpu.taints:
        yield "    " + style.paint(_taint(taint), "bad")


def _mig(layout: occupancy.MigLayout, style: Style) -> Iterator[str]:
    by_slice = {k: slot for slot in layout.held for k in slot.memory_slices}
    free = set(layout.free_slices)
    header, row = ["    slices "], ["           "]
    k = 0
    while k < layout.slices:
        slot = by_slice.get(k)
        span = len(slot.memory_slices) if slot else 1
        width = CELL * span + span - 1
        numbers = " ".join(str(j).ljust(CELL) for j in range(k, k + span))
        header.append("│" + numbers)
        if slot is not None:
            row.append("│" + style.paint(slot.profile[:width].ljust(width), "mig"))
        else:
            text = "free" if k in free else "taken"
            row.append("│" + style.paint(text.ljust(width), "dim" if k in free else "shares"))
        k += span
    yield "".join(header) + "│"
    yield "".join(row) + "│"
    for slot in layout.held:
        where = f"{slot.profile} @{slot.start}" + (" (admin's)" if slot.static else "")
        for holder in slot.holders:
            yield _join(f"    {slot.device}", where, _holder(holder, style))
    yield _join("    fits", _fits(layout) or style.paint("no MIG placement", "dim"))


def _fits(layout: occupancy.MigLayout) -> str:
    if not layout.fits:
        return ""
    groups = itertools.groupby(layout.fits, key=lambda s: s.profile)
    return "  ".join(
        f"{profile} @{','.join(str(s.start) for s in slots)}" for profile, slots in groups
    )


def _free(gpu: occupancy.Gpu) -> str:
    parts = ["whole GPU"] if gpu.fits_whole else []
    if gpu.shares is not None and gpu.shares.accepting:
        parts.append("shares")
    if gpu.mig is not None and gpu.mig.fits:
        parts.append(f"MIG {_fits(gpu.mig)}")
    return "; ".join(parts) or "nothing (tainted)"


def _shares(pool: occupancy.SharePool, style: Style) -> Iterator[str]:
    strategy = f" ({pool.strategy})" if pool.strategy else ""
    yield f"    {', '.join(pool.devices)}{strategy}: {len(pool.shares)} shares"
    memory = [s.memory_bytes or 0 for s in pool.shares]
    cores = [s.cores or 0 for s in pool.shares]
    yield _join(
        "    memory",
        _bar(memory, pool.memory_bytes, style),
        f"{_bytes(sum(memory))} of {_bytes(pool.memory_bytes)}",
    )
    yield _join("    cores ", _bar(cores, pool.cores, style), f"{sum(cores)}% of {pool.cores}%")
    for share in pool.shares:
        amounts = f"{_bytes(share.memory_bytes or 0)}, {share.cores or 0}%"
        used = (
            f"uses {_bytes(share.usage.used_bytes)} of {_bytes(share.usage.limit_bytes)}"
            if share.usage
            else ""
        )
        share_id = f"share {share.holder.share_id}" if style.wide and share.holder.share_id else ""
        yield _join(f"    {share.device}", amounts, share_id, _holder(share.holder, style), used)
    if not pool.accepting:
        yield "    " + style.paint("takes no new share", "dim")


def _bar(amounts: list[int], total: int, style: Style) -> str:
    """One segment per share, alternating glyphs so neighbours stay apart, then the free part."""
    cells, taken = [], 0
    for n, amount in enumerate(amounts):
        end = taken + amount
        width = round(BAR * end / total) - round(BAR * taken / total) if total else 0
        cells.append(style.paint("█▓"[n % 2] * width, "shares"))
        taken = end
    used = round(BAR * taken / total) if total else 0
    return "".join(cells) + style.paint("░" * max(BAR - used, 0), "dim")


def _holder(holder: occupancy.Holder, style: Style) -> str:
    if holder.pods:
        names = ", ".join(p.name + (f" ({p.phase})" if style.wide else "") for p in holder.pods)
        pods = f"pod {style.paint(holder.namespace + '/', 'bold')}{style.paint(names, 'bold')}"
    else:
        pods = f"no pod ({holder.namespace})"
    request = f"/{holder.request}" if style.wide else ""
    admin = "  adminAccess" if holder.admin_access else ""
    return f"{pods}  claim {holder.claim}{request}{admin}"


def _taint(taint: occupancy.Taint) -> str:
    value = f"={taint.value}" if taint.value else ""
    where = f" on {', '.join(taint.devices)}" if taint.devices else ""
    source = f" (rule {taint.rule})" if taint.rule else ""
    return f"taint {taint.key}{value}:{taint.effect}{where}{source}"


def _bytes(n: int) -> str:
    """Whole quantities as Kubernetes writes them (``10Gi``); others in GiB to a tenth."""
    exact = quantities.format_bytes(n)
    if n < 2**30 or exact.endswith(("Gi", "Ti")):
        return exact
    return f"{n / 2**30:.1f}Gi"


def _join(*parts: str) -> str:
    return "  ".join(p for p in parts if p)
