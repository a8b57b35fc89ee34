#!/usr/bin/env bash
# Build kubectl at the Kubernetes version of the local control plane (e2e/cluster/go.mod), once,
# into a cache outside the clone, and print the bin directory as the last line of stdout (progress
# goes to stderr). `make up` puts it in front of the commands it prints, so a machine without
# kubectl, or with one too old for resource.k8s.io/v1, can still talk to the cluster.
#
#   bin=$(hack/build-kubectl.sh)   # then "$bin/kubectl"
#
# Cache: ${GPU_DRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-dra-driver}/kubectl-<version>-<hash>/bin,
# <hash> covering e2e/cluster/go.mod, go.sum and this script. It builds k8s.io/kubernetes/cmd/kubectl
# from a copy of that module (its go.sum gains kubectl's few extra dependencies there, never in
# the clone, so the control plane's cache key does not move).
#
# Measured on a 2-core machine after the control plane was built (its Go build cache warm): 17 s
# wall, a few MB of extra modules, a 62 MB binary. Later calls print the cached path.
set -euo pipefail

module_dir=$(cd "$(dirname "$0")/../e2e/cluster" && pwd)
log() { echo "build-kubectl.sh: $*" >&2; }

k8s_version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ { print $2; exit }' "${module_dir}/go.mod")
hash=$(cat "${module_dir}/go.mod" "${module_dir}/go.sum" "$0" | sha256sum | cut -c1-12)
cache_root=${GPU_DRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-dra-driver}
key="kubectl-${k8s_version}-${hash}"
final="${cache_root}/${key}"
built() { [[ -x "${final}/bin/kubectl" ]]; }
if built; then
    echo "${final}/bin"
    exit 0
fi

# One builder at a time; a second caller waits and then reuses the result.
mkdir -p "$cache_root"
exec 9>"${cache_root}/.${key}.lock"
if ! flock -n 9; then
    log "another build of kubectl ${k8s_version} is running; waiting for it"
    flock 9
fi
if built; then
    echo "${final}/bin"
    exit 0
fi

rm -rf "${cache_root}/.${key}.tmp."*
tmp=$(mktemp -d "${cache_root}/.${key}.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
chmod 755 "$tmp"
mkdir "$tmp/bin" "$tmp/module"
cp "${module_dir}/go.mod" "${module_dir}/go.sum" "$tmp/module/"

log "building kubectl ${k8s_version} (once; cached at ${final})"
started=$(date +%s)
IFS=. read -r major minor _ <<<"${k8s_version#v}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${pkg}.gitVersion=${k8s_version} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor}"
    ldflags+=" -X ${pkg}.gitTreeState=clean"
done
(
    cd "$tmp/module"
    GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -buildvcs=false \
        -ldflags "$ldflags" -o "$tmp/bin/kubectl" k8s.io/kubernetes/cmd/kubectl
)
rm -rf "$tmp/module"

# Publish atomically: an interrupted build leaves only a temp dir, never a half cache.
rm -rf "$final"
mv -T "$tmp" "$final"
trap - EXIT
log "built in $(($(date +%s) - started))s: ${final}/bin/kubectl"
echo "${final}/bin"
