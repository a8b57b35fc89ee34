#!/usr/bin/env bash
# The README's demo command: a real local control plane (built once from the Kubernetes Go modules,
# then cached), a fake 8×A100-40GB node published by the driver's device builder, the quickstart
# claims of deploy/examples/, and a table of what the real scheduler allocated. Cleans up on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m e2e.harness demo --gpus "${GPUS:-8xA100-40GB}"
