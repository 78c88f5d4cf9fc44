#!/bin/bash
# debsrc.sh - fetch a Debian source file from the mirror apt already uses.
#
# Usage: scripts/debsrc.sh POOL_PATH SHA256 [CACHE_DIR]
#   POOL_PATH  path below the archive root, e.g.
#              pool/main/r/rdma-core/rdma-core_56.1.orig.tar.gz
#   SHA256     expected SHA-256 of the file (64 hex digits)
#   CACHE_DIR  where to keep downloads (default: $DEBSRC_CACHE, else
#              <repo>/build/cache)
# Prints the absolute path of the verified file on stdout; messages go to
# stderr. A cached file whose hash matches is reused without any network I/O.
#
# The mirror is read at run time from apt's configuration: the URIs: line of
# the Debian main archive stanza in /etc/apt/sources.list.d/*.sources (not the
# security archive), falling back to a "deb URI suite ..." line in
# /etc/apt/sources.list (locations as reported by apt-config, so APT_CONFIG
# is honoured). Set DEBSRC_MIRROR=URI to override.
# Download and verification use apt's own client (apt-helper download-file).
set -eu

die() { echo "debsrc: $*" >&2; exit 1; }

if [ $# -lt 2 ] || [ $# -gt 3 ]; then die "usage: $0 POOL_PATH SHA256 [CACHE_DIR]"; fi
pool_path=${1#/}
sha=$(printf '%s' "$2" | tr 'A-F' 'a-f')
case $sha in
    *[!0-9a-f]*) die "bad SHA-256: $2" ;;
esac
[ ${#sha} -eq 64 ] || die "bad SHA-256 length: $2"

script_dir=$(cd "$(dirname "$0")" && pwd)
cache_dir=${3:-${DEBSRC_CACHE:-$script_dir/../build/cache}}
mkdir -p "$cache_dir"
cache_dir=$(cd "$cache_dir" && pwd)
file=$cache_dir/$(basename "$pool_path")

file_ok() {
    [ -f "$file" ] && [ "$(sha256sum "$file" | cut -d' ' -f1)" = "$sha" ]
}

if file_ok; then
    printf '%s\n' "$file"
    exit 0
fi

# Print candidate archive URIs, one per line as "RANK URI". Lower rank wins:
# 0 = a deb822 stanza whose URI path ends in /debian, 1 = other non-security
# deb822 stanza with component main, 2 = sources.list "deb" line.
list_mirrors() {
    # Where apt keeps its sources (normally /etc/apt/sources.list{,.d}).
    SL=/etc/apt/sources.list SP=/etc/apt/sources.list.d/
    eval "$(apt-config shell SL Dir::Etc::sourcelist/f SP Dir::Etc::sourceparts/d 2>/dev/null)" || true
    for f in "${SP%/}"/*.sources; do
        [ -r "$f" ] || continue
        awk '
        function flush() {
            if (uris != "" && enabled != "no" && types ~ /(^| )deb( |$)/ &&
                suites !~ /-security/ && comps ~ /(^| )main( |$)/) {
                n = split(uris, u, /[ \t]+/)
                for (i = 1; i <= n; i++) {
                    if (u[i] == "" || u[i] ~ /security/) continue
                    p = u[i]; sub(/\/+$/, "", p)
                    print ((p ~ /\/debian$/) ? 0 : 1), u[i]
                }
            }
            uris = types = suites = comps = enabled = ""; key = ""
        }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        /^[ \t]/ {                       # continuation line
            v = $0; sub(/^[ \t]+/, "", v)
            if (key == "uris") uris = uris " " v
            else if (key == "suites") suites = suites " " v
            else if (key == "components") comps = comps " " v
            else if (key == "types") types = types " " v
            next
        }
        {
            k = tolower($0); sub(/:.*/, "", k)
            v = $0; sub(/^[^:]*:[ \t]*/, "", v); sub(/[ \t]+$/, "", v)
            key = k
            if (k == "uris") uris = v
            else if (k == "types") types = v
            else if (k == "suites") suites = v
            else if (k == "components") comps = v
            else if (k == "enabled") enabled = tolower(v)
        }
        END { flush() }' "$f"
    done
    if [ -r "$SL" ]; then
        awk '
        /^[ \t]*deb[ \t]/ {
            line = $0; sub(/#.*/, "", line)
            gsub(/\[[^]]*\]/, "", line)         # drop [ options ]
            n = split(line, w, /[ \t]+/)
            j = 0
            for (i = 1; i <= n; i++) if (w[i] != "") a[++j] = w[i]
            if (j >= 3 && a[2] !~ /security/ && a[3] !~ /-security/) print 2, a[2]
        }' "$SL"
    fi
}

if [ -n "${DEBSRC_MIRROR:-}" ]; then
    mirror=$DEBSRC_MIRROR
else
    mirror=$(list_mirrors | sort -s -n -k1,1 | head -n1 | cut -d' ' -f2)
fi
[ -n "$mirror" ] || die "no Debian archive URI found in apt sources (set DEBSRC_MIRROR)"
uri=${mirror%/}/$pool_path

echo "debsrc: fetching $(basename "$pool_path") from $uri" >&2
part=$file.part
rm -f "$part" "$part.FAILED"
# Download as root into a root-owned dir: skip apt's _apt sandbox (it would
# only warn that it cannot write there and fall back to root anyway).
sandbox_opt=
[ "$(id -u)" -eq 0 ] && sandbox_opt=-oAPT::Sandbox::User=root
if ! /usr/lib/apt/apt-helper $sandbox_opt download-file "$uri" "$part" "SHA256:$sha" >&2; then
    rm -f "$part" "$part.FAILED"
    die "download or hash check failed: $uri"
fi
mv -f "$part" "$file"
file_ok || die "hash mismatch after download: $file"
printf '%s\n' "$file"
