#!/usr/bin/env bash
# Build the driver's image (deploy/Dockerfile's) without Docker and without a registry: an OCI
# image archive, cached; prints its directory as the last line of stdout (progress on stderr):
#
#   dir=$(hack/build-image.sh)   # $dir/image.oci.tar, $dir/ref (NAME:TAG), $dir/digest
#   ctr images import "$dir/image.oci.tar"                       # containerd
#   skopeo copy "oci-archive:$dir/image.oci.tar" docker://<registry>/gpu-dra-driver:0.3.0
#
# The same stages as deploy/Dockerfile, made from Debian's packages and the project's own tools:
#   base     debootstrap --variant=minbase bookworm + python3, upgraded from bookworm-updates and
#            bookworm-security, then slimmed as debian:bookworm-slim is (no apt lists, no docs,
#            man pages, locales or logs)                   = FROM debian:bookworm-slim + python3
#   preload  libgpuquota.so from `make -C preload` with the host's gcc, checked to need at most
#            GLIBC_2.17 symbol versions and to load                         = stage `preload`
#   hook     nvidia-cdi-hook of the NVIDIA Container Toolkit, a static binary (runs on any host
#            glibc)                                                             = stage `hook`
#   python   base + python3-venv; a venv at /opt/gpu-dra-driver with the project and its pinned
#            dependencies (wheels fetched by the host's pip; installed offline), pip removed
#                                                                             = stage `python`
#   image    layers: base, the venv, the library, the hook, the nonroot user (65532); config
#            (labels, env, user, command) read from the Dockerfile's last stage by
#            hack/oci_image.py                                               = the last stage
#
# Needs: root (chroot), apt-get and dpkg (debootstrap itself is fetched with `apt-get download`
# and unpacked, not installed), gcc and make, Go and the Go module proxy (the hook), pip and the
# package index (wheels), the Debian mirror of this machine's apt sources (read at run time).
# Nothing is installed on the host.
#
# Cache: ${GPU_DRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-dra-driver}/
#   image-base-<key>/{base,builder}   the Debian trees (key: suite and recipe)
#   image-hook-<version>/             the static hook
#   image-wheels-<key>/               the wheels (key: pyproject.toml)
#   image-<key>/                      the image (key: all of the above and the sources)
# Cold build (2 cores): see docs/install.md. A change of the sources only rebuilds the venv and the
# layers (the base, hook and wheels stay cached).
set -euo pipefail

SUITE=bookworm
NVIDIA_TOOLKIT_VERSION=${NVIDIA_TOOLKIT_VERSION:-v1.20.2}
PRELOAD_MAX_GLIBC=2.17
VENV=/opt/gpu-dra-driver
# Bump when a step below changes in a way the keys do not see.
BASE_RECIPE=1
IMAGE_RECIPE=1

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-}
if [[ -z "$python" ]]; then
    if [[ -x "$repo/.venv/bin/python" ]]; then python="$repo/.venv/bin/python"; else python=python3; fi
fi

log() { echo "build-image.sh: $*" >&2; }
source "$repo/hack/lib/cache.sh" # cached NAME FUNCTION: one builder per entry, renamed into place
die() { log "$*"; exit 1; }
hash_of() { sha256sum | cut -c1-12; }

[[ $(id -u) == 0 ]] || die "needs root (debootstrap and chroot)"
[[ $(uname -m) == x86_64 ]] || die "builds the amd64 image only (this machine is $(uname -m))"

# The chroot's commands run with a clean environment (no host pip or proxy settings).
in_root() {
    local root=$1
    shift
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive chroot "$root" "$@"
}

# --- the Debian mirror, from this machine's apt sources ------------------------------------------

# The URI of the first source serving suite $1 from component main (deb822 .sources files and
# one-line .list files).
mirror_for() {
    local suite=$1 file
    for file in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$file" ]] || continue
        awk -v want="$suite" '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " want " ") && uris != "") {
                    split(uris, u, " "); print u[1]; found = 1; exit
                }
                types = suites = uris = ""
            }
            /^[[:space:]]*$/ { flush(); next }
            /^Types:/ { sub(/^Types:[[:space:]]*/, ""); types = $0 }
            /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0 }
            /^URIs:/ { sub(/^URIs:[[:space:]]*/, ""); uris = $0 }
            END { if (!found) flush() }
        ' "$file"
    done
    { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
        awk -v want="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                                            if ($(i + 1) == want) print $i }'
}
first_mirror() { mirror_for "$1" | awk 'NR == 1'; }

# --- base: Debian minbase + python3 (and the builder: + python3-venv) ----------------------------

build_base() {
    local out=$1 mirror security updates
    mirror=$(first_mirror "$SUITE")
    [[ -n "$mirror" ]] || die "no apt source for $SUITE in /etc/apt/sources.list{,.d}"
    security=$(first_mirror "$SUITE-security")
    updates=$(first_mirror "$SUITE-updates")
    log "base: debootstrap $SUITE (minbase + python3) from this machine's apt mirror"
    mkdir "$out/debs"
    (cd "$out/debs" && apt-get download -q debootstrap >&2)
    dpkg -x "$out"/debs/debootstrap_*.deb "$out/debootstrap"
    DEBOOTSTRAP_DIR="$out/debootstrap/usr/share/debootstrap" \
        "$out/debootstrap/usr/sbin/debootstrap" --variant=minbase --include=python3 \
        --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
        "$SUITE" "$out/base" "$mirror" >"$out/debootstrap.log" 2>&1 ||
        { tail -n 30 "$out/debootstrap.log" >&2; die "debootstrap failed"; }
    {
        echo "deb $mirror $SUITE main"
        [[ -z "$updates" ]] || echo "deb $updates $SUITE-updates main"
        [[ -z "$security" ]] || echo "deb $security $SUITE-security main"
    } >"$out/base/etc/apt/sources.list"
    cp /etc/resolv.conf "$out/base/etc/resolv.conf"
    log "base: upgrading from $SUITE-updates and $SUITE-security"
    in_root "$out/base" apt-get -q update >&2
    in_root "$out/base" apt-get -q -y upgrade >&2
    log "builder: base + python3-venv"
    cp -a "$out/base" "$out/builder"
    in_root "$out/builder" apt-get -q -y install --no-install-recommends python3-venv >&2
    slim "$out/base"
    rm -rf "$out/debs" "$out/debootstrap"
}

# What debian:bookworm-slim leaves out: apt's lists and caches, docs (but the copyright files),
# man and info pages, translations, logs; and what only the build needed (the mirror, resolv.conf).
slim() {
    local root=$1
    in_root "$root" apt-get clean
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root/etc/apt/sources.list" \
        "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
        "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
        "$root"/usr/share/lintian/* "$root"/usr/share/linda/* "$root"/usr/share/groff/*
    find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    find "$root/var/log" -type f -delete
    : >"$root/etc/resolv.conf"
    rm -rf "${root:?}"/tmp/* "${root:?}"/dev/*
}

# --- hook: nvidia-cdi-hook, static ---------------------------------------------------------------

build_hook() {
    local out=$1 module=github.com/NVIDIA/nvidia-container-toolkit
    log "hook: nvidia-cdi-hook ${NVIDIA_TOOLKIT_VERSION}, static (Go module)"
    # go-nvml is cgo (NVML is dlopen'd), so not CGO_ENABLED=0: cgo linked statically, with pure Go
    # name and user lookups (netgo, osusergo). NVML's symbols stay unresolved as in the toolkit's
    # own build; the hooks of our CDI specs (create-symlinks, update-ldcache, enable-cuda-compat)
    # never call NVML.
    GOTOOLCHAIN=local CGO_ENABLED=1 GOFLAGS= GOBIN="$out" go install -trimpath -tags netgo,osusergo \
        -ldflags "-s -w -linkmode=external \
            '-extldflags=-static -Wl,--unresolved-symbols=ignore-in-object-files' \
            -X ${module}/internal/info.version=${NVIDIA_TOOLKIT_VERSION#v}" \
        "${module}/cmd/nvidia-cdi-hook@${NVIDIA_TOOLKIT_VERSION}" \
        2> >(grep -v -e 'statically linked' -e 'Cfunc_dlopen' -e '^# ' >&2)
    "$out/nvidia-cdi-hook" --version >/dev/null
}

# --- wheels: the project's pinned dependencies, for the image's Python ---------------------------

requirements() {
    "$python" - "$repo/pyproject.toml" <<'EOF'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join([*project["dependencies"], *project["optional-dependencies"]["nvml"]]))
EOF
}

build_wheels() {
    local out=$1
    log "wheels: the project's dependencies for CPython 3.11 (pip download)"
    requirements >"$out/requirements.txt"
    # setuptools is the project's build backend (pip builds the project's wheel in the chroot).
    echo "setuptools>=68" >>"$out/requirements.txt"
    # pip takes the platform tags as given: every manylinux that bookworm's glibc (2.36) runs.
    local platforms=(--platform manylinux2014_x86_64) minor
    for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
    "$python" -m pip download -q --dest "$out" --only-binary=:all: --implementation cp \
        --python-version 3.11 --abi cp311 --abi abi3 --abi none "${platforms[@]}" \
        -r "$out/requirements.txt" >&2
}

# --- the image -----------------------------------------------------------------------------------

sources() {
    (cd "$repo" && find pyproject.toml api dra_driver controller kubeletplugin preload \
        -type f ! -path '*/__pycache__/*' ! -path 'preload/build/*' ! -name '*.pyc' -print0 |
        sort -z | xargs -0 sha256sum)
}

build_image() {
    local out=$1 work
    work=$(mktemp -d "$cache_root/.image-work.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" RETURN
    local base="$cache_root/$base_name/base" builder="$cache_root/$base_name/builder"

    log "preload: libgpuquota.so"
    make -C "$repo/preload" -s GPUQ_BUILD="$work/preload" "$work/preload/libgpuquota.so" >&2
    local lib="$work/preload/libgpuquota.so" newest
    newest=$(objdump -T "$lib" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
    if [[ $(printf '%s\n' "GLIBC_$PRELOAD_MAX_GLIBC" "$newest" | sort -V | tail -n 1) != "GLIBC_$PRELOAD_MAX_GLIBC" ]]; then
        die "libgpuquota.so needs $newest, newer than glibc $PRELOAD_MAX_GLIBC"
    fi
    LD_PRELOAD="$lib" /bin/true

    log "python: the venv at $VENV"
    cp -a "$builder" "$work/python"
    mkdir "$work/python/src" "$work/python/tmp/wheels"
    (cd "$repo" && tar -c --exclude=__pycache__ --exclude='*.pyc' \
        pyproject.toml api dra_driver controller kubeletplugin) | tar -x -C "$work/python/src"
    cp "$cache_root/$wheels_name"/*.whl "$work/python/tmp/wheels/"
    in_root "$work/python" /bin/sh -ec "
        python3 -m venv $VENV
        cd /src
        PIP_NO_INDEX=1 PIP_FIND_LINKS=/tmp/wheels PIP_NO_CACHE_DIR=1 \
            PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
            $VENV/bin/pip install -q '.[nvml]'
        $VENV/bin/pip uninstall -q -y pip setuptools
    " >&2
    find "$work/python$VENV" -name direct_url.json -delete

    log "image: layers and config"
    mkdir -p "$work/layers/venv/opt" "$work/layers/lib/usr/local/lib/gpu-dra-driver" \
        "$work/layers/hook/usr/local/bin"
    mv "$work/python$VENV" "$work/layers/venv/opt/"
    install -m 0644 "$lib" "$work/layers/lib/usr/local/lib/gpu-dra-driver/libgpuquota.so"
    install -m 0755 "$cache_root/$hook_name/nvidia-cdi-hook" "$work/layers/hook/usr/local/bin/"
    cp -a "$base" "$work/user"
    in_root "$work/user" /bin/sh -ec "
        groupadd --system --gid 65532 nonroot
        useradd --system --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin nonroot
    "
    local ref="gpu-dra-driver.invalid/gpu-dra-driver:${version}-${image_key}"
    "$python" "$repo/hack/oci_image.py" --dockerfile "$repo/deploy/Dockerfile" --ref "$ref" \
        --out "$out/image.oci.tar" --tree "$base" --tree "$work/layers/venv" \
        --tree "$work/layers/lib" --tree "$work/layers/hook" --diff "$base" "$work/user" \
        >"$out/digest"
    echo "$ref" >"$out/ref"
}

started=$SECONDS
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -n 1)
base_name="image-base-$(echo "$SUITE $BASE_RECIPE python3 python3-venv" | hash_of)"
hook_name="image-hook-${NVIDIA_TOOLKIT_VERSION}"
wheels_name="image-wheels-$(requirements | hash_of)"
image_key=$(
    {
        echo "$base_name $hook_name $wheels_name $IMAGE_RECIPE $PRELOAD_MAX_GLIBC"
        sha256sum "$repo/hack/build-image.sh" "$repo/hack/lib/cache.sh" "$repo/hack/oci_image.py" \
            "$repo/deploy/Dockerfile" |
            cut -d' ' -f1
        sources
    } | hash_of
)
image_name="image-$image_key"
if [[ ! -e "$cache_root/$image_name/.done" ]]; then
    # The hook and the wheels are fetched and built while debootstrap runs.
    cached "$hook_name" build_hook &
    hook_job=$!
    cached "$wheels_name" build_wheels &
    wheels_job=$!
    cached "$base_name" build_base
    wait "$hook_job" || die "the hook failed to build"
    wait "$wheels_job" || die "the wheels failed to download"
    cached "$image_name" build_image
    log "image built in $((SECONDS - started)) s: $(cat "$cache_root/$image_name/ref")"
fi
echo "$cache_root/$image_name"
