#!/usr/bin/env bash
# Render the chart with its default values into deploy/manifests/gpu-dra-driver.yaml (or the path
# given), with the real Helm (built by build-helm.sh). e2e/test_chart.py checks the committed file
# is current: run this after every change to the chart.
#
#   deploy/helm/render-manifests.sh [OUTPUT]
#
# Release gpu-dra-driver in namespace gpu-dra-driver (created by the file). The webhook's
# certificate, which Helm generates at install, is replaced by placeholders: a private key has no
# place in git, and a fresh one would change the file on every render.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
output=$(realpath -m "${1:-${here}/../manifests/gpu-dra-driver.yaml}")
helm=$("${here}/build-helm.sh" | tail -n 1)
placeholder=$(printf 'placeholder: Helm generates this at install (docs/install.md)' | base64 -w0)

rendered=$("$helm" template gpu-dra-driver "${here}/gpu-dra-driver" \
    --namespace gpu-dra-driver --kube-version 1.37.0)

{
    cat <<HEADER
# The gpu-dra-driver chart rendered with its default values (deploy/helm/render-manifests.sh; do
# not edit by hand). For reading and reviewing changes; install with Helm (docs/install.md). The
# webhook's certificate is a placeholder here: applying this file as it is needs the Secret
# gpu-dra-driver-webhook-tls and the caBundle replaced first (docs/install.md, "Without Helm").
---
apiVersion: v1
kind: Namespace
metadata:
  name: gpu-dra-driver
HEADER
    sed -E "s/^( +(tls\\.crt|tls\\.key|ca\\.crt|caBundle): ).+$/\\1${placeholder}/" <<<"$rendered"
} >"${output}.tmp"
mv "${output}.tmp" "$output"
echo "$output"
