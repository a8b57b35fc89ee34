#!/usr/bin/env bash
# Build the container runtime of the real-container e2e tests from Go modules: containerd,
# containerd-shim-runc-v2 and ctr (containerd/go.mod) and runc (runc/go.mod), once per version and
# build recipe, into a cache outside the clone. Prints the bin dir as the last line of stdout;
# everything else goes to stderr.
#
#   bin=$(e2e/runtime/build.sh)
#
# Two small modules, not the Kubernetes one (e2e/cluster/go.mod): each selects exactly the
# dependency versions of its upstream release, and the control plane's dependency set stays as it is.
#
# Cache: ${GPU_DRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-dra-driver}/runtime-<containerd>-<runc>-<hash>/bin,
# where <hash> covers both modules' go.mod and go.sum and this script.
#
# Lean on purpose (it runs in CI beside the Kubernetes build):
#   - containerd without btrfs, devmapper, zfs (snapshotters we do not use; btrfs also needs cgo
#     headers) and without OpenTelemetry tracing; CRI stays in, it is what the fake kubelet talks to;
#   - the shim with no_grpc (ttrpc only), as upstream's Makefile builds it;
#   - runc with cgo (its nsenter is C) but without the seccomp tag: no libseccomp-dev is needed, and
#     the tests' containers run unconfined (the CRI default when a pod asks for no profile). A pod
#     asking for RuntimeDefault would fail here with "seccomp not supported".
#   - stripped binaries (-s -w): linking is a large share of the time.
# Set GPU_DRA_BUILD_STATS=1 to print wall time and peak RSS of each step (needs /usr/bin/time).
set -euo pipefail

runtime_dir=$(cd "$(dirname "$0")" && pwd)
cd "$runtime_dir"

log() { echo "runtime/build.sh: $*" >&2; }
now() { date +%s; }

# module_version DIR MODULE: the version DIR/go.mod requires of MODULE.
module_version() {
    awk -v m="$2" '($1 == m && $2 ~ /^v/) || ($1 == "require" && $2 == m) { print ($1 == m ? $2 : $3); exit }' "$1/go.mod"
}
containerd_version=$(module_version containerd github.com/containerd/containerd/v2)
runc_version=$(module_version runc github.com/opencontainers/runc)
src_hash=$(
    sha256sum containerd/go.mod containerd/go.sum runc/go.mod runc/go.sum build.sh | sha256sum | cut -c1-12
)
cache_root=${GPU_DRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-dra-driver}
key="runtime-containerd-${containerd_version}-runc-${runc_version}-${src_hash}"
final="${cache_root}/${key}"
binaries=(containerd containerd-shim-runc-v2 ctr runc)

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

# runc needs a C compiler (cgo, for its nsenter). On a bare Debian machine, as root, install it.
if ! command -v gcc >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        log "installing gcc and libc6-dev for runc's cgo (apt-get)"
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >&2
    else
        log "runc needs a C compiler (cgo, for its nsenter): install gcc and libc6-dev"
        exit 1
    fi
fi

export GOTOOLCHAIN=local GOFLAGS=-mod=mod

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
    timer=(/usr/bin/time -f "runtime/build.sh:   stats: wall %es, peak RSS %M KiB")
fi

# step WHAT COMMAND...: run one step with a progress line every 30 s.
step() {
    local what=$1 t0
    shift
    t0=$(now)
    log "${what} ..."
    (
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

started=$(now)
log "containerd ${containerd_version} and runc ${runc_version} are not cached yet; building them"
log "from Go modules (cold: ~3 min on 2 cores), cached at ${final}"

# The module zips carry no git commit: the revision is the module's content hash from go.sum.
revision=$(awk -v m=github.com/containerd/containerd/v2 -v v="$containerd_version" \
    '$1 == m && $2 == v { print $3; exit }' containerd/go.sum)
pkg=github.com/containerd/containerd/v2
containerd_ldflags="-s -w -X ${pkg}/version.Version=${containerd_version} -X ${pkg}/version.Revision=${revision}"
containerd_ldflags+=" -X ${pkg}/version.Package=github.com/containerd/containerd/v2"
tags="no_btrfs no_devmapper no_zfs no_tracing urfave_cli_no_docs"

step "downloading Go modules" bash -c 'cd containerd && go mod download && cd ../runc && go mod download'

# containerd and ctr in one invocation, so the packages they share compile once.
step "building containerd and ctr" bash -c "cd containerd && CGO_ENABLED=0 go build -trimpath -buildvcs=false \
    -tags '${tags}' -ldflags '${containerd_ldflags}' -o '${tmp}/bin/' ${pkg}/cmd/containerd ${pkg}/cmd/ctr"
step "building containerd-shim-runc-v2" bash -c "cd containerd && CGO_ENABLED=0 go build -trimpath -buildvcs=false \
    -tags '${tags} no_grpc' -ldflags '${containerd_ldflags}' -o '${tmp}/bin/' ${pkg}/cmd/containerd-shim-runc-v2"

# runc embeds its VERSION file; gitCommit carries the module hash like the revision above.
runc_commit=$(awk -v m=github.com/opencontainers/runc -v v="$runc_version" '$1 == m && $2 == v { print $3; exit }' runc/go.sum)
step "building runc" bash -c "cd runc && CGO_ENABLED=1 go build -trimpath -buildvcs=false -buildmode=pie \
    -tags urfave_cli_no_docs -ldflags '-s -w -X main.gitCommit=${runc_commit}' \
    -o '${tmp}/bin/runc' github.com/opencontainers/runc"

"${tmp}/bin/containerd" --version >&2
"${tmp}/bin/runc" --version >&2

rm -rf "$final"
mv -T "$tmp" "$final"
log "built in $(($(now) - started))s: $(du -sh "${final}/bin" | cut -f1) in ${final}/bin"
echo "${final}/bin"
