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
source "$(dirname "${BASH_SOURCE[0]}")/lib/cache.sh"

build() {
    mkdir "$1/bin"
    # `go install pkg@version` builds the module exactly as released (its own go.mod and go.sum).
    # go-nvml declares the NVML functions in cgo and dlopens libnvidia-ml.so.1 at run time, so the
    # link must leave those symbols unresolved: the same extldflags as the toolkit's own Makefile.
    # The version is stamped the way that Makefile does; without it `nvidia-ctk --version` says
    # "N/A".
    local extldflags="-Wl,--export-dynamic -Wl,--unresolved-symbols=ignore-in-object-files -Wl,-z,lazy"
    GOTOOLCHAIN=local CGO_ENABLED=1 GOFLAGS= GOBIN="$1/bin" go install -trimpath \
        -ldflags "-s -w '-extldflags=${extldflags}' -X ${module}/internal/info.version=${NVIDIA_TOOLKIT_VERSION#v}" \
        "${module}/cmd/nvidia-ctk@${NVIDIA_TOOLKIT_VERSION}" \
        "${module}/cmd/nvidia-cdi-hook@${NVIDIA_TOOLKIT_VERSION}"
}

# Both binaries come from one `go install` and the entry appears whole: one is the mark.
name="nvidia-toolkit-${NVIDIA_TOOLKIT_VERSION}"
cached "$name" build bin/nvidia-cdi-hook
echo "${cache_root}/${name}/bin"
