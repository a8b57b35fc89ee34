"""docs/monitoring.md as the tests read it: its metrics table, its headings' anchors, its links."""

from __future__ import annotations

import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[2]
MONITORING = REPO / "docs" / "monitoring.md"


def section(text: str, heading: str) -> str:
    """The text under ``## <heading>`` up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if match is None:
        raise AssertionError(f"no section '## {heading}'")
    return match.group(1)


def table_names(text: str) -> list[str]:
    """The `code` names in the first column of the first table in `text`."""
    table = re.search(r"^\|.*?(?=^[^|]|\Z)", text, re.M | re.S)
    if table is None:
        raise AssertionError("no table")
    return re.findall(r"^\| `([a-zA-Z_:][a-zA-Z0-9_:]*)` \|", table.group(0), re.M)


def anchors(path: pathlib.Path) -> set[str]:
    """The anchors GitHub gives the headings of `path`: lower case, punctuation dropped, spaces
    as hyphens."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", path.read_text(), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def links(text: str) -> list[tuple[str, str]]:
    """Every relative markdown link with an anchor: (file, anchor); file empty for this page."""
    return re.findall(r"\]\(([\w./-]*)#([\w-]+)\)", text)


def subheadings(text: str) -> list[str]:
    """The ``### `` headings in `text`."""
    return re.findall(r"^### (.+)$", text, re.M)


def join_query() -> str:
    """The dcgm-exporter join as the page shows it (its first ``promql`` block), on one line."""
    blocks = re.findall(r"```promql\n(.*?)```", MONITORING.read_text(), re.S)
    return " ".join(blocks[0].split())
