"""Every function in the library's hook table is reached the ways a program reaches the driver.

Covers: for each CUDA entry point of ``hooks.h``, dlsym on the libcuda.so.1 handle and
cuGetProcAddress_v2 (cudaVersion 12080; the per-thread-default-stream flag for _ptsz variants)
both hand out the library's function of that exact name.
"""

from __future__ import annotations

import re

from tests.preload import building, programs

LIBRARY = "libgpuquota.so"


def _hooks() -> list[tuple[str, str, int]]:
    table = (building.PRELOAD / "hooks.h").read_text()
    found = re.findall(r'^\s+X\((\w+), CUDA, "(\w+)", \d+, ([01])\)', table, flags=re.MULTILINE)
    return [(name, base, int(ptsz)) for name, base, ptsz in found]


def test_every_hook_resolves_to_the_library_by_dlsym_and_cu_get_proc_address(
    build: building.Build,
) -> None:
    hooks = [hook for hook in _hooks() if not hook[0].startswith("cuGetProcAddress")]
    assert len(hooks) > 30
    arguments = [str(word) for hook in hooks for word in hook]
    output = programs.run(
        build, "resolve_check", options=arguments, env=programs.environment(build)
    )
    assert output.returncode == 0, output
    found = {
        (line.words[0], line.values["via"]): (line.values["in"], line.values["symbol"])
        for line in output.results("resolve")
    }
    wrong = {key: value for key, value in found.items() if value != (LIBRARY, key[0])}
    assert len(found) == 2 * len(hooks)
    assert wrong == {}
