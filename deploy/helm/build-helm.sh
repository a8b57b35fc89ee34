#!/usr/bin/env bash
# Build the `helm` CLI from its Go module, once per version, into a cache outside the clone, and
# print the binary's path as the last line of stdout (progress goes to stderr).
#
#   helm=$(deploy/helm/build-helm.sh)
#
# Cache: ${GPU_DRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-dra-driver}/helm-<version>/helm.
# Needs Go (>= the version helm's go.mod asks for) and the Go module proxy, the first time only.
set -euo pipefail

HELM_VERSION=${HELM_VERSION:-v3.22.0}
major=${HELM_VERSION%%.*}

log() { echo "build-helm.sh: $*" >&2; }

cache_root=${GPU_DRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-dra-driver}
final="${cache_root}/helm-${HELM_VERSION}"
if [[ -x "${final}/helm" ]]; then
    echo "${final}/helm"
    exit 0
fi

# One builder at a time; a second caller waits and then reuses the result.
mkdir -p "$cache_root"
exec 9>"${cache_root}/.helm-${HELM_VERSION}.lock"
if ! flock -n 9; then
    log "another build of helm ${HELM_VERSION} is running; waiting for it"
    flock 9
fi
if [[ -x "${final}/helm" ]]; then
    echo "${final}/helm"
    exit 0
fi

rm -rf "${cache_root}/.helm-${HELM_VERSION}.tmp."*
tmp=$(mktemp -d "${cache_root}/.helm-${HELM_VERSION}.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"

log "building helm ${HELM_VERSION} from helm.sh/helm/${major} (once; cached at ${final})"
started=$(date +%s)
# `go install pkg@version` builds the module exactly as released (its own go.mod and go.sum).
# The version is stamped the way helm's Makefile does; without it `helm version` says "v3.x-dev".
GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS= GOBIN="$tmp" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/${major}/internal/version.version=${HELM_VERSION}" \
    "helm.sh/helm/${major}/cmd/helm@${HELM_VERSION}"

# Publish atomically: an interrupted build leaves only a temp dir, never a half cache.
rm -rf "$final"
mv -T "$tmp" "$final"
trap - EXIT
log "built in $(($(date +%s) - started))s: ${final}/helm"
echo "${final}/helm"
