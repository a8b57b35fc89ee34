#!/usr/bin/env bash
# Creates (once) the project's virtualenv in a cache outside the clone and links it as .venv.
# The venv holds the dependencies only, keyed by a hash of pyproject.toml: a dependency change
# builds a fresh one, and every clone with the same dependencies shares it. The project itself is
# not installed into it (that would tie the venv to one clone): code runs from the clone's root
# (`python -m ...`, pytest's pythonpath). Prints the venv path.
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
    python3 - "$here/pyproject.toml" >"$venv/requirements.txt" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["dev"]))
PY
    "$venv/bin/pip" install --quiet -r "$venv/requirements.txt" >&2
    touch "$venv/.complete"
fi
ln -sfn "$venv" "$here/.venv"
echo "$venv"
