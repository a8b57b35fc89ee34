#!/usr/bin/env bash
# Build the upstream DRA example driver's kubelet plugin (kubernetes-sigs/dra-example-driver,
# `cmd/dra-example-kubeletplugin`, built on k8s.io/dynamic-resource-allocation/kubeletplugin)
# from its Go module, once per version, into a cache outside the clone, and print the binary's
# path as the last line of stdout (progress goes to stderr). `bench/prepare.py --peer` runs it
# beside our plugin against the same local control plane, as the peer our figures are compared to.
#
#   peer=$(hack/build-example-driver.sh | tail -n 1)
#
# Cache: ${GPU_DRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-dra-driver}/dra-example-driver-<version>/dra-example-kubeletplugin.
# Needs Go (>= the version the driver's go.mod asks for: 1.26 for v0.4.0) and the Go module proxy,
# the first time only. v0.4.0 is built on Kubernetes 0.36 libraries and speaks resource.k8s.io/v1
# and the kubelet's DRA gRPC v1 (and v1beta1), which the local control plane (1.37) serves.
#
# The module is downloaded (`go mod download`) and built in its module cache directory with its own
# go.mod and go.sum, exactly as released. (`go install pkg@version` would do the same, but it also
# reads the module's version list to look for a deprecation notice, and a proxy that refuses list
# requests fails it.)
#
# Cold build (empty Go module and build caches, v0.4.0, 2 cores shared with other jobs, load about
# 2.5, niced): 114 s wall, 124 s user, 26 s system; it downloads 47 MB of modules and writes a 50 MB
# binary. Later calls print the cached path at once.
set -euo pipefail

EXAMPLE_DRIVER_VERSION=${EXAMPLE_DRIVER_VERSION:-v0.4.0}
module=sigs.k8s.io/dra-example-driver
binary=dra-example-kubeletplugin

log() { echo "build-example-driver.sh: $*" >&2; }
source "$(dirname "${BASH_SOURCE[0]}")/lib/cache.sh"

build() {
    local out=$1 source_dir
    export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=
    source_dir=$(go mod download -json "${module}@${EXAMPLE_DRIVER_VERSION}" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    if [[ ! -f "${source_dir}/go.mod" ]]; then
        log "go mod download gave no module directory for ${module}@${EXAMPLE_DRIVER_VERSION}"
        exit 1
    fi
    (cd "$source_dir" && go build -mod=readonly -trimpath -ldflags "-s -w" -o "${out}/${binary}" \
        "./cmd/${binary}")
}

name="dra-example-driver-${EXAMPLE_DRIVER_VERSION}"
cached "$name" build "$binary"
echo "${cache_root}/${name}/${binary}"
