#!/usr/bin/env bash
# Pin this wrapper module to one Kubernetes release.
#
#   e2e/cluster/gen-replaces.sh v1.37.3   # bump to a new patch (or minor)
#   e2e/cluster/gen-replaces.sh           # re-derive for the version already in go.mod
#
# k8s.io/kubernetes requires every staging module (k8s.io/api, k8s.io/client-go, ...) at v0.0.0 and
# resolves them with `=> ./staging/src/...` replaces, which Go ignores in a dependency. So this module
# must replace each one with its published tag (v1.Y.Z pairs with v0.Y.Z). The list changes between
# releases, so it is read from the release's own go.mod, never typed by hand. etcd server is pinned
# to the version Kubernetes itself lists, so shared dependencies (gRPC, OpenTelemetry) do not move.
set -euo pipefail
cd "$(dirname "$0")"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

version=${1:-$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ { print $2; exit }' go.mod)}
if [[ ! $version =~ ^v1\.[0-9]+\.[0-9]+$ ]]; then
    echo "usage: $0 v1.Y.Z   (got '${version}')" >&2
    exit 2
fi
staging_version="v0.${version#v1.}"

upstream_gomod=$(go mod download -json "k8s.io/kubernetes@${version}" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
staging=$(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/src/k8s\.io/.*#\1#p' \
    "$upstream_gomod")
etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2; exit }' "$upstream_gomod")
if [[ -z $staging || -z $etcd_version ]]; then
    echo "could not read the staging list or etcd version from $upstream_gomod" >&2
    exit 1
fi

# Drop the staging replaces of the previous pin first, so a module that left staging does not linger,
# then write the new list as one block.
drop=()
for old in $(sed -n 's#^[[:space:]]*\(replace[[:space:]]\{1,\}\)\{0,1\}\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\2[[:space:]].*#\2#p' go.mod); do
    drop+=("-dropreplace=${old}")
done
go mod edit "${drop[@]}" -require="k8s.io/kubernetes@${version}" -require="go.etcd.io/etcd/server/v3@${etcd_version}"
{
    echo
    echo "// Staging modules of k8s.io/kubernetes ${version}, written by gen-replaces.sh."
    echo "replace ("
    for mod in $staging; do
        printf '\t%s => %s %s\n' "$mod" "$mod" "$staging_version"
    done
    echo ")"
} >>go.mod
go mod edit -fmt
go mod tidy

echo "pinned k8s.io/kubernetes ${version}, $(wc -w <<<"$staging") staging modules at ${staging_version}, etcd server ${etcd_version}" >&2
