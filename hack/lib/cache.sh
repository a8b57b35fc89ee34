# Sourced by the build scripts that keep what they build in a cache outside the clone, one entry
# per key: ${GPU_DRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-dra-driver}/<key>. The script
# defines `log` first.
#
#   cached NAME FUNCTION [MARK]
#
# Unless $cache_root/NAME/MARK exists (default `.done`, which `cached` then writes), run
# FUNCTION TMPDIR and rename TMPDIR to $cache_root/NAME: an interrupted build leaves only a temp
# dir (removed by the next build of NAME), never a half entry. One builder per NAME at a time: a
# second caller waits for the first and then finds the entry built.

cache_root=${GPU_DRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-dra-driver}

cached() {
    local name=$1 fn=$2 mark=${3:-.done} final="$cache_root/$1"
    [[ -e "$final/$mark" ]] && return 0
    mkdir -p "$cache_root"
    local lock
    exec {lock}>"$cache_root/.$name.lock"
    if ! flock -n "$lock"; then
        log "another build of $name is running; waiting for it"
        flock "$lock"
    fi
    if [[ ! -e "$final/$mark" ]]; then
        rm -rf "$cache_root/.$name.tmp."*
        local tmp
        tmp=$(mktemp -d "$cache_root/.$name.tmp.XXXXXX")
        chmod 755 "$tmp"
        local started=$SECONDS
        log "building $name (once; cached at $final)"
        "$fn" "$tmp"
        [[ $mark == .done ]] && touch "$tmp/.done"
        [[ -e "$tmp/$mark" ]] || { log "$name: the build made no $mark"; exit 1; }
        rm -rf "$final"
        mv -T "$tmp" "$final"
        log "$name: built in $((SECONDS - started)) s"
    fi
    exec {lock}>&-
}
