#!/usr/bin/env bash
# Regenerate the Python gRPC code from kubeletplugin/protos/**/*.proto (committed; CI checks it is
# current with `hack/protos.sh --check`).
set -euo pipefail
cd "$(dirname "$0")/.."
out=kubeletplugin/protos
if [[ ${1:-} == --check ]]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    out="$tmp"
fi
mapfile -t protos < <(find kubeletplugin/protos -name '*.proto' | sort)
.venv/bin/python -m grpc_tools.protoc -I . --python_out="$out" --pyi_out="$out" \
    --grpc_python_out="$out" "${protos[@]}"
if [[ ${1:-} == --check ]]; then
    for proto in "${protos[@]}"; do
        base=${proto%.proto}
        for suffix in _pb2.py _pb2.pyi _pb2_grpc.py; do
            if ! cmp -s "$tmp/$base$suffix" "$base$suffix"; then
                echo "generated code is stale: run hack/protos.sh ($base$suffix)" >&2
                exit 1
            fi
        done
    done
    echo "generated gRPC code is current"
else
    # protoc writes into <out>/kubeletplugin/protos/...; move it next to the .proto files.
    cp -r "$out"/kubeletplugin/protos/. kubeletplugin/protos/ 2>/dev/null || true
    rm -rf "$out"/kubeletplugin
fi
