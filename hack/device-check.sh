#!/usr/bin/env bash
# The check for a machine with an NVIDIA GPU and driver and no network (e2e/devicecheck):
# the plugin on real NVML prepares a whole GPU, a share (memory quota) and, where the GPU can, a
# MIG device through the fake kubelet; the probe (e2e/probe) runs in each claim's container with
# --kernel (and the allocation test up to the share's quota); one JSON summary line on stdout,
# exit 1 when a required claim failed.
#
#   hack/device-check.sh prepare [--with-runtime]   here: build and pack .device/ (git-ignored)
#   hack/device-check.sh run                        on the GPU machine, from the repo root, with
#                                                   .device/ carried along
#   hack/device-check.sh dry-run                    anywhere: the same flow on fake GPUs
#
# `run` unpacks .device/bundle.tar.xz into $GPU_DRA_DEVICE_ROOT (default /tmp/gdra-device), puts
# its site/ (the plugin's dependencies, installed here for CPython 3.12, the GPU image's python3)
# on PYTHONPATH, and stops after $GPU_DRA_DEVICE_TIMEOUT seconds (default 540: the device tool
# allows 10 minutes a call).
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
prepare)
    shift
    hack/venv.sh >/dev/null
    exec .venv/bin/python -m e2e.devicecheck prepare "$@"
    ;;
dry-run)
    hack/venv.sh >/dev/null
    exec .venv/bin/python -m e2e.devicecheck run --dry-run
    ;;
run)
    root=${GPU_DRA_DEVICE_ROOT:-/tmp/gdra-device}
    limit=${GPU_DRA_DEVICE_TIMEOUT:-540}
    if [[ ! -f .device/bundle.tar.xz ]]; then
        echo "device-check.sh: no .device/bundle.tar.xz; run 'hack/device-check.sh prepare' first" >&2
        exit 2
    fi
    nvidia-smi -L >&2 || echo "device-check.sh: nvidia-smi failed" >&2
    rm -rf "$root"
    mkdir -p "$root"
    tar -C "$root" -xJf .device/bundle.tar.xz
    export PYTHONPATH="$root/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    status=0
    timeout "$limit" python3 -m e2e.devicecheck run --bundle "$root" --work-dir "$root/work" ||
        status=$?
    if [[ $status == 124 ]]; then
        echo "{\"ok\": false, \"error\": \"device-check.sh: timed out after ${limit}s\"}"
    fi
    exit "$status"
    ;;
*)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
