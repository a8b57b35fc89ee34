#!/usr/bin/env bash
# `make up`: the demo's cluster to play with (a real local control plane, a fake GPU node with the
# kubelet plugin, the cluster controller and its DeviceClasses), kept running until Ctrl-C or
# SIGTERM; prints the kubeconfig and the first commands to try. Nothing is left behind when stopped.
# GPUS picks the node's fake GPUs, with or without the "fake:" of `make inventory`:
#   make up GPUS=2xH100-80GB,1xL4
set -euo pipefail
cd "$(dirname "$0")/.."
gpus=${GPUS:-8xA100-40GB}
exec .venv/bin/python -m e2e.harness up --gpus "${gpus#fake:}"
