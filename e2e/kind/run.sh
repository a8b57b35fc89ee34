#!/usr/bin/env bash
# The e2e scenarios on kind: build the image, create the cluster, install the chart with fake
# GPUs, run the scenarios of e2e/kind/ against it, delete the cluster (KEEP_CLUSTER=1 keeps it).
# Needs Docker and kind on the PATH; cannot run on machines without a Docker engine.
set -euo pipefail
cd "$(dirname "$0")/../.."
cluster=gpu-dra-e2e
image=gpu-dra-driver:e2e
gpus=${GPUS:-fake:4xA100-40GB}

command -v docker >/dev/null || { echo "run.sh: needs docker" >&2; exit 2; }
command -v kind >/dev/null || { echo "run.sh: needs kind" >&2; exit 2; }
hack/venv.sh >/dev/null
helm=$(deploy/helm/build-helm.sh)

echo "==> building $image" >&2
docker build -t "$image" -f deploy/Dockerfile .
echo "==> creating kind cluster $cluster" >&2
kind create cluster --config e2e/kind/kind-config.yaml --wait 120s
cleanup() { [[ ${KEEP_CLUSTER:-} == 1 ]] || kind delete cluster --name "$cluster"; }
trap cleanup EXIT
kind load docker-image "$image" --name "$cluster"
kubeconfig=$(mktemp)
kind get kubeconfig --name "$cluster" >"$kubeconfig"

echo "==> installing the chart with --gpus $gpus" >&2
"$helm" install gpu-dra-driver deploy/helm/gpu-dra-driver --kubeconfig "$kubeconfig" \
    --namespace gpu-dra-driver --create-namespace --wait --timeout 5m \
    --set image.repository="${image%%:*}" --set image.tag="${image##*:}" \
    --set image.pullPolicy=Never --set gpus="$gpus" \
    --set-string kubeletPlugin.nodeSelector."gpu\.dra\.dev/fake-gpus"=true

echo "==> running the scenarios against the kind cluster" >&2
# The same scenarios as on the local control plane (those needing its binaries skip), plus the
# quickstart run on real kubelets with the chart's plugin.
GPU_DRA_E2E_KUBECONFIG=$kubeconfig .venv/bin/python -m pytest e2e -m "e2e or kind" -v
