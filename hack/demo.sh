#!/usr/bin/env bash
# The README's demo command. Today it shows what a fake 8×A100-40GB node publishes; the full demo
# (local control plane, plugin, example claims, table of what got allocated and prepared) grows
# here as the control-plane, plugin and deployment issues land.
set -euo pipefail
cd "$(dirname "$0")/.."
gpus=${GPUS:-fake:8xA100-40GB}
echo "==> devices a node with --gpus $gpus publishes (full mode; python -m dra_driver.inventory)"
.venv/bin/python -m dra_driver.inventory --gpus "$gpus" --format table 2>/dev/null | head -40
echo "    ... ($(.venv/bin/python -m dra_driver.inventory --gpus "$gpus" --format table 2>/dev/null | tail -n +2 | wc -l) devices in all)"
echo
echo "==> per GPU"
.venv/bin/python -m dra_driver.inventory --gpus "$gpus" 2>&1 >/dev/null
echo
echo "Not yet part of the demo: the local control plane, the kubelet plugin, example claims and the"
echo "allocation table (see the open issues: local control plane, kubelet plugin, deployment)."
