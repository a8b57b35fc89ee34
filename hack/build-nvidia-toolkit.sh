#!/usr/bin/env bash
# Build `nvidia-ctk` and `nvidia-cdi-hook` of the NVIDIA Container Toolkit from its Go module, once
# per version, into a cache outside the clone, and print the bin directory as the last line of stdout
# (progress goes to stderr). The conformance tests (tests/driverroot/) run `nvidia-ctk cdi generate`
# on a synthetic driver root and compare its CDI spec with ours.
#
#   bin=$(hack/build-nvidia-toolkit.sh)   # then "$bin/nvidia-ctk", "$bin/nvidia-cdi-hook"
#
# Cache: ${GPU_DRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-dra-driver}/nvidia-toolkit-<version>/bin.
# Needs Go (>= the version the toolkit's go.mod asks for), a C compiler (go-nvml is cgo), and the Go
# module proxy, the first time only.
#
# Cold build (empty Go module and build caches, 2 cores, v1.20.2): 96 s wall (53 s user); about
# 60 s when the module cache already holds the dependencies. Later calls print the cached path.
set -euo pipefail

# Newest release the module proxy serves that builds with GOTOOLCHAIN=local on Go 1.26.
NVIDIA_TOOLKIT_VERSION=${NVIDIA_TOOLKIT_VERSION:-v1.20.2}
module=github.com/NVIDIA/nvidia-container-toolkit

log() { echo "build-nvidia-toolkit.sh: $*" >&2; }

cache_root=${GPU_DRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-dra-driver}
final="${cache_root}/nvidia-toolkit-${NVIDIA_TOOLKIT_VERSION}"
built() { [[ -x "${final}/bin/nvidia-ctk" && -x "${final}/bin/nvidia-cdi-hook" ]]; }
if built; then
    echo "${final}/bin"
    exit 0
fi

# One builder at a time; a second caller waits and then reuses the result.
mkdir -p "$cache_root"
exec 9>"${cache_root}/.nvidia-toolkit-${NVIDIA_TOOLKIT_VERSION}.lock"
if ! flock -n 9; then
    log "another build of the toolkit ${NVIDIA_TOOLKIT_VERSION} is running; waiting for it"
    flock 9
fi
if built; then
    echo "${final}/bin"
    exit 0
fi

rm -rf "${cache_root}/.nvidia-toolkit-${NVIDIA_TOOLKIT_VERSION}.tmp."*
tmp=$(mktemp -d "${cache_root}/.nvidia-toolkit-${NVIDIA_TOOLKIT_VERSION}.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
mkdir "$tmp/bin"

log "building nvidia-ctk and nvidia-cdi-hook ${NVIDIA_TOOLKIT_VERSION} (once; cached at ${final})"
started=$(date +%s)
# `go install pkg@version` builds the module exactly as released (its own go.mod and go.sum).
# go-nvml declares the NVML functions in cgo and dlopens libnvidia-ml.so.1 at run time, so the link
# must leave those symbols unresolved: the same extldflags as the toolkit's own Makefile. The version
# is stamped the way that Makefile does; without it `nvidia-ctk --version` says "N/A".
extldflags="-Wl,--export-dynamic -Wl,--unresolved-symbols=ignore-in-object-files -Wl,-z,lazy"
GOTOOLCHAIN=local CGO_ENABLED=1 GOFLAGS= GOBIN="$tmp/bin" go install -trimpath \
    -ldflags "-s -w '-extldflags=${extldflags}' -X ${module}/internal/info.version=${NVIDIA_TOOLKIT_VERSION#v}" \
    "${module}/cmd/nvidia-ctk@${NVIDIA_TOOLKIT_VERSION}" \
    "${module}/cmd/nvidia-cdi-hook@${NVIDIA_TOOLKIT_VERSION}"

# Publish atomically: an interrupted build leaves only a temp dir, never a half cache.
rm -rf "$final"
mv -T "$tmp" "$final"
trap - EXIT
log "built in $(($(date +%s) - started))s: ${final}/bin"
echo "${final}/bin"
