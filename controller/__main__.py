"""Entry point of the controller process (console script `gpu-dra-controller`).

The process itself is not built yet; until it is, this says so and exits non-zero rather than
pretending to run.
"""

from __future__ import annotations

import sys


def main() -> int:
    print("controller: not built yet (see the open issues); nothing was started", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
