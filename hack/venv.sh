#!/usr/bin/env bash
# Creates (once) the project's virtualenv in a cache outside the clone and links it as .venv.
# The venv is keyed by a hash of pyproject.toml, so a dependency change builds a fresh one and
# an unchanged clone reuses the old one. Prints the venv path.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${GPU_DRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-dra-driver}
key=$(sha256sum "$here/pyproject.toml" | cut -c1-12)
venv="$cache/venv-$key"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
    echo "venv: creating $venv (once per dependency set)" >&2
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip >&2 || true
    "$venv/bin/pip" install --quiet -e "$here[dev]" >&2
    touch "$venv/.complete"
fi
# The editable install points at whichever clone created the venv; re-point it at this one.
if ! "$venv/bin/python" -c "import api, sys; sys.exit(0 if api.__file__.startswith('$here/') else 1)" 2>/dev/null; then
    "$venv/bin/pip" install --quiet --no-deps -e "$here" >&2
fi
ln -sfn "$venv" "$here/.venv"
echo "$venv"
