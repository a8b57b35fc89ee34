"""Entry point of the kubeletplugin process (console script `gpu-dra-kubeletplugin`).

The process itself is not built yet; until it is, this says so and exits non-zero rather than
pretending to run.
"""

from __future__ import annotations

import sys


def main() -> int:
    print(
        "kubeletplugin: not built yet (see the open issues); nothing was started", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
