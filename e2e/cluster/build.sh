#!/usr/bin/env bash
# Build the local control plane (kube-apiserver, kube-scheduler, kube-controller-manager, etcd) from
# Go modules, plus this module's own commands (fake-kubelet, cdi-check), once per version and source
# state, into a cache outside the clone. Prints the bin dir as the last line of stdout; everything
# else goes to stderr.
#
#   bin=$(e2e/cluster/build.sh)
#
# Cache: ${GPU_DRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-dra-driver}/k8s-<version>-<hash>/bin, where
# <hash> covers go.sum, go.mod, this script and every cmd/**/*.go file. When go.sum is unchanged, the
# four control-plane binaries are hard-linked from an older key instead of being rebuilt (so a change
# to their build flags below needs that old key deleted by hand).
# Set GPU_DRA_BUILD_STATS=1 to print wall time and peak RSS of each step (needs /usr/bin/time).
set -euo pipefail

module_dir=$(cd "$(dirname "$0")" && pwd)
cd "$module_dir"

log() { echo "build.sh: $*" >&2; }
now() { date +%s; }

# --- cache key: the Kubernetes version, the exact dependency set and our commands' sources -------
k8s_version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ { print $2; exit }' go.mod)
# The control-plane binaries depend only on go.sum (the dependency set); our commands also on
# their own sources. An edit to cmd/ thus makes a new key but reuses the control plane.
deps_hash=$(sha256sum go.sum | cut -c1-12)
src_hash=$(
    {
        sha256sum go.sum go.mod build.sh
        find cmd -type f -name '*.go' -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
    } | sha256sum | cut -c1-12
)
cache_root=${GPU_DRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-dra-driver}
key="k8s-${k8s_version}-${src_hash}"
final="${cache_root}/${key}"
control_plane=(kube-apiserver kube-scheduler kube-controller-manager etcd)
commands=(fake-kubelet cdi-check)
binaries=("${control_plane[@]}" "${commands[@]}")

complete() {
    local b
    for b in "${binaries[@]}"; do
        [[ -x "${final}/bin/${b}" ]] || return 1
    done
}

if complete; then
    echo "${final}/bin"
    exit 0
fi

# --- one builder at a time per key; a second caller waits and then reuses the result --------------
mkdir -p "$cache_root"
exec 9>"${cache_root}/.${key}.lock"
if ! flock -n 9; then
    log "another build of ${key} is running; waiting for it"
    flock 9
fi
if complete; then
    echo "${final}/bin"
    exit 0
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

# Holding the lock, leftovers of a killed build of this key are garbage.
rm -rf "${cache_root}/.${key}.tmp."*
tmp=$(mktemp -d "${cache_root}/.${key}.tmp.XXXXXX")
ticker_pid=
cleanup() {
    if [[ -n $ticker_pid ]]; then kill "$ticker_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
chmod 755 "$tmp"
mkdir -p "${tmp}/bin"

timer=()
if [[ -n ${GPU_DRA_BUILD_STATS:-} && -x /usr/bin/time ]]; then
    timer=(/usr/bin/time -f "build.sh:   stats: wall %es, peak RSS %M KiB")
fi

# step WHAT COMMAND...: run one step with a progress line every 30 s.
step() {
    local what=$1 t0
    shift
    t0=$(now)
    log "${what} ..."
    (
        # Kill the pending sleep too: it would hold the caller's pipe open for up to 30 s.
        sleeper=
        trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
        while :; do
            sleep 30 &
            sleeper=$!
            wait "$sleeper"
            log "  still ${what}: $(($(now) - t0))s elapsed"
        done
    ) >/dev/null &
    ticker_pid=$!
    "${timer[@]}" "$@"
    kill "$ticker_pid" 2>/dev/null || true
    wait "$ticker_pid" 2>/dev/null || true
    ticker_pid=
    log "  done ${what} in $(($(now) - t0))s"
}

# reusable_control_plane: print a complete cache dir whose control plane was built from this
# go.sum (recorded in control-plane.sum; older keys were named after the go.sum hash itself).
reusable_control_plane() {
    local dir b
    for dir in "${cache_root}/k8s-${k8s_version}-"*/; do
        dir=${dir%/}
        if [[ $(cat "${dir}/control-plane.sum" 2>/dev/null) != "$deps_hash" &&
            $dir != "${cache_root}/k8s-${k8s_version}-${deps_hash}" ]]; then
            continue
        fi
        for b in "${control_plane[@]}"; do
            [[ -x "${dir}/bin/${b}" ]] || continue 2
        done
        echo "$dir"
        return 0
    done
    return 1
}

started=$(now)
IFS=. read -r major minor _ <<<"${k8s_version#v}"
if reuse=$(reusable_control_plane); then
    log "cmd/ sources changed: reusing the control-plane binaries of ${reuse} (same go.sum)"
    for b in "${control_plane[@]}"; do
        ln "${reuse}/bin/${b}" "${tmp}/bin/${b}" 2>/dev/null || cp "${reuse}/bin/${b}" "${tmp}/bin/${b}"
    done
else
    log "Kubernetes ${k8s_version} control-plane binaries are not cached yet."
    log "Building them from Go modules: this happens once per version (cold: ~4 min on 2 fast cores)"
    log "and is cached at ${final}"
    log "(Go's module and build caches: $(go env GOMODCACHE), $(go env GOCACHE))"
    step "downloading Go modules" go mod download
fi

# Stamp /version the way Kubernetes' hack/lib/version.sh does. The module zip has no git commit, so
# gitCommit carries the module's content hash from go.sum, and buildDate the tag's time (which keeps
# rebuilds reproducible). The fake kubelet reports the same version as its node's kubeletVersion.
tag_time=$(go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
content_hash=$(awk -v v="$k8s_version" '$1 == "k8s.io/kubernetes" && $2 == v { print $3; exit }' go.sum)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${pkg}.gitVersion=${k8s_version} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor}"
    ldflags+=" -X ${pkg}.gitCommit=${content_hash} -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=${tag_time}"
done

if [[ -z ${reuse:-} ]]; then
    # One invocation for the three, so the packages they share compile once.
    step "building kube-apiserver, kube-scheduler and kube-controller-manager" \
        go build -trimpath -ldflags "$ldflags" -o "${tmp}/bin/" \
        k8s.io/kubernetes/cmd/kube-apiserver \
        k8s.io/kubernetes/cmd/kube-scheduler \
        k8s.io/kubernetes/cmd/kube-controller-manager

    # Without -o <name> the binary would be called "server" (the module root is package main).
    step "building etcd" \
        go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=go-module-build" \
        -o "${tmp}/bin/etcd" go.etcd.io/etcd/server/v3
fi

# Our own commands (cmd/): the fake kubelet (built from the kubelet's DRA and plugin managers) and
# cdi-check. They share most packages with the control plane, so this is quick after it.
# -buildvcs=false: otherwise Go stamps the clone's current commit and dirty flag into them, and the
# binaries would no longer be a function of the cache key (and differ between identical builds).
step "building fake-kubelet and cdi-check" \
    go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "${tmp}/bin/" ./cmd/fake-kubelet ./cmd/cdi-check
echo "$deps_hash" >"${tmp}/control-plane.sum"

# Publish atomically: an interrupted build leaves only a temp dir, never a half cache.
rm -rf "$final"
mv -T "$tmp" "$final"
log "built in $(($(now) - started))s: $(du -sh "${final}/bin" | cut -f1) in ${final}/bin"
echo "${final}/bin"
