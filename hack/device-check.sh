#!/usr/bin/env bash
# The check for a machine with an NVIDIA GPU and driver and no network (e2e/devicecheck; see "The
# device check" in docs/install.md): a local control plane, containerd with runc, the fake kubelet
# starting pods through CRI, and the plugin on real NVML with the machine's driver (--driver-root
# /). It claims a whole GPU, a share (4 GiB memory quota) and, where the GPU can, a MIG device, one
# at a time; each claim's pod runs the probe (e2e/probe) in real containers from the test image,
# with only what the claim's CDI spec gives them (device nodes, the driver's libraries found
# through the ld cache the nvidia-cdi-hook made, the quota library): --kernel in each, and in the
# share's pod two containers allocating against one account, which must add up to the quota
# exactly. One JSON summary line on stdout; exit 1 when a required claim failed or containerd
# left anything behind (processes, mounts, cgroups).
#
#   hack/device-check.sh prepare    here: build and pack .device/ (git-ignored)
#   hack/device-check.sh stash      on the GPU machine: keep the carried piece(s)
#   hack/device-check.sh run        on the GPU machine, from the repo root
#   hack/device-check.sh dry-run    here: the same flow on fake GPUs over a synthetic driver root
#
# The bundle (cluster binaries, containerd, runc, nvidia-cdi-hook, the test image as an OCI archive
# built from this machine's files, the quota library, the plugin's Python dependencies) comes in
# pieces that each fit one device call beside the working tree (see .device/manifest.json,
# "pieces"): carry .device/manifest.json and .device/piece-<n> per call, `stash` all but the last
# (the machine keeps /tmp while warm: 30 s between calls), and `run` with the last. `run` joins
# the pieces, unpacks them into $GPU_DRA_DEVICE_ROOT (default /tmp/gdra-device), puts its site/
# (installed here for CPython 3.12, the GPU image's python3) on PYTHONPATH, and stops after
# $GPU_DRA_DEVICE_TIMEOUT seconds (default 500, then 30 s for its clean-up: the device tool allows
# 10 minutes a call, unpacking included).
set -euo pipefail
cd "$(dirname "$0")/.."

stash=${GPU_DRA_DEVICE_STASH:-/tmp/gdra-device-pieces}
stash_pieces() {
    local piece
    if [[ ! -f .device/manifest.json ]]; then
        echo "device-check.sh: no .device/manifest.json; run 'hack/device-check.sh prepare' here" >&2
        exit 2
    fi
    mkdir -p "$stash"
    for piece in .device/piece-*/; do
        [[ -f ${piece}bundle.xz.part ]] && cp "${piece}bundle.xz.part" "$stash/$(basename "$piece")"
    done
    ls "$stash" >&2
}

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
stash)
    stash_pieces
    ;;
run)
    root=${GPU_DRA_DEVICE_ROOT:-/tmp/gdra-device}
    limit=${GPU_DRA_DEVICE_TIMEOUT:-500}
    stash_pieces
    missing=$(python3 -c 'import json, os, sys; m = json.load(open(".device/manifest.json"))
print(" ".join(p for p in m["pieces"] if not os.path.exists(f"{sys.argv[1]}/{p}")))' "$stash")
    if [[ -n $missing ]]; then
        echo "device-check.sh: pieces missing: $missing (stash them first, each within 30 s)" >&2
        exit 2
    fi
    nvidia-smi -L >&2 || echo "device-check.sh: nvidia-smi failed" >&2
    rm -rf "$root"
    mkdir -p "$root"
    python3 -c 'import json; print("\n".join(json.load(open(".device/manifest.json"))["pieces"]))' |
        while read -r piece; do cat "$stash/$piece"; done | xz -d | tar -C "$root" -xf -
    export PYTHONPATH="$root/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    status=0
    # SIGTERM at the limit: the run stops containerd and its pods itself (30 s before SIGKILL).
    timeout --kill-after=30 "$limit" \
        python3 -m e2e.devicecheck run --bundle "$root" --work-dir "$root/work" || status=$?
    if [[ $status == 124 ]]; then
        echo "{\"ok\": false, \"error\": \"device-check.sh: timed out after ${limit}s\"}"
    fi
    exit "$status"
    ;;
*)
    sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
