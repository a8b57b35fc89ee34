#!/usr/bin/env bash
# Build kubectl at the Kubernetes version of the local control plane (e2e/cluster/go.mod), once,
# into a cache outside the clone, and print the bin directory as the last line of stdout (progress
# goes to stderr). `make up` puts it in front of the commands it prints, so a machine without
# kubectl, or with one too old for resource.k8s.io/v1, can still talk to the cluster.
#
#   bin=$(hack/build-kubectl.sh)   # then "$bin/kubectl"
#
# Cache: ${GPU_DRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-dra-driver}/kubectl-<version>-<hash>/bin,
# <hash> covering e2e/cluster/go.mod, go.sum, this script and hack/lib/cache.sh. It builds k8s.io/kubernetes/cmd/kubectl
# from a copy of that module (its go.sum gains kubectl's few extra dependencies there, never in
# the clone, so the control plane's cache key does not move).
#
# Measured on a 2-core machine after the control plane was built (its Go build cache warm): 17 s
# wall, a few MB of extra modules, a 62 MB binary. Later calls print the cached path.
set -euo pipefail

module_dir=$(cd "$(dirname "$0")/../e2e/cluster" && pwd)
log() { echo "build-kubectl.sh: $*" >&2; }
source "$(dirname "${BASH_SOURCE[0]}")/lib/cache.sh"

k8s_version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ { print $2; exit }' "${module_dir}/go.mod")
hash=$(cat "${module_dir}/go.mod" "${module_dir}/go.sum" "$0" "$(dirname "$0")/lib/cache.sh" |
    sha256sum | cut -c1-12)

build() {
    local out=$1
    mkdir "$out/bin" "$out/module"
    cp "${module_dir}/go.mod" "${module_dir}/go.sum" "$out/module/"
    local major minor ldflags="-s -w" pkg
    IFS=. read -r major minor _ <<<"${k8s_version#v}"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X ${pkg}.gitVersion=${k8s_version} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor}"
        ldflags+=" -X ${pkg}.gitTreeState=clean"
    done
    (
        cd "$out/module"
        GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -buildvcs=false \
            -ldflags "$ldflags" -o "$out/bin/kubectl" k8s.io/kubernetes/cmd/kubectl
    )
    rm -rf "$out/module"
}

name="kubectl-${k8s_version}-${hash}"
cached "$name" build bin/kubectl
echo "${cache_root}/${name}/bin"
