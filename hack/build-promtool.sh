#!/usr/bin/env bash
# Build Prometheus' `promtool` from its Go module, once per version, into a cache outside the
# clone, and print the binary's path as the last line of stdout (progress goes to stderr). The
# monitoring tests (tests/monitoring/) check the chart's alerting rules with `promtool check rules`
# and evaluate them, and the PromQL join of docs/monitoring.md, with `promtool test rules`.
#
#   promtool=$(hack/build-promtool.sh | tail -n 1)
#
# Cache: ${GPU_DRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-dra-driver}/promtool-<version>/promtool.
# Needs Go (>= the version Prometheus' go.mod asks for) and the Go module proxy, the first time only.
# Service discovery plugins are left out (build tag `remove_all_sd`): promtool's rule commands do
# not use them, and they are most of Prometheus' dependencies (the cloud SDKs). promtool still
# imports the Kubernetes discovery itself, so client-go is compiled.
#
# Cold build (empty Go module and build caches, v0.316.0, 2 cores shared with other builds, load
# about 7): 300 s wall, 164 s user; it downloads about 1 GB of modules. Later calls print the
# cached path at once.
set -euo pipefail

# Prometheus 3.x releases are tagged v0.3xx.y in its Go module (v3.16.0 is v0.316.0).
PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-v0.316.0}
module=github.com/prometheus/prometheus

log() { echo "build-promtool.sh: $*" >&2; }
source "$(dirname "${BASH_SOURCE[0]}")/lib/cache.sh"

build() {
    # `go install pkg@version` builds the module exactly as released (its own go.mod and go.sum).
    GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS= GOBIN="$1" go install -trimpath -tags remove_all_sd \
        -ldflags "-s -w" "${module}/cmd/promtool@${PROMETHEUS_VERSION}"
}

name="promtool-${PROMETHEUS_VERSION}"
cached "$name" build promtool
echo "${cache_root}/${name}/promtool"
