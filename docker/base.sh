#!/bin/sh
# A Debian bookworm base image with python3 and python3-venv, made here from Debian's package
# archive with mmdebstrap, for machines that reach no image registry (docker/Dockerfile's BASE
# default, python:3.11-slim-bookworm, is the same distribution and Python release).
#
#   docker/base.sh [TAG]        # default TAG: lbmanager-base:bookworm
#
# The tarball is cached in $LBMANAGER_IMAGE_CACHE (default ~/.cache/lbmanager-image) and only
# imported when the daemon (DOCKER_HOST) lacks TAG; delete the tarball to take newer packages.
# mmdebstrap runs as root (apt-get install mmdebstrap): it downloads about 40 MB of packages and
# takes about 30 s of CPU (3-4 minutes on a busy 2-core machine); importing takes seconds.
set -eu

tag=${1:-lbmanager-base:bookworm}
cache=${LBMANAGER_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lbmanager-image}
tarball=$cache/bookworm-python3.tar
docker=${DOCKER:-docker}

if "$docker" image inspect "$tag" >/dev/null 2>&1; then
    exit 0
fi
if [ ! -s "$tarball" ]; then
    command -v mmdebstrap >/dev/null || {
        echo "docker/base.sh: needs mmdebstrap (as root: apt-get install mmdebstrap)" >&2
        exit 1
    }
    mkdir -p "$cache"
    echo "docker/base.sh: building $tarball with mmdebstrap" >&2
    # Like Debian's slim images: no recommends, no documentation, no apt lists, and /usr merged
    # the way debootstrap does it (usr-is-merged), not by the usrmerge package and its 50 MB
    # of perl.
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --aptopt='APT::Install-Recommends "false"' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --format=tar bookworm "$tarball.part" \
        "deb http://deb.debian.org/debian bookworm main" \
        "deb http://deb.debian.org/debian bookworm-updates main" \
        "deb http://deb.debian.org/debian-security bookworm-security main"
    mv "$tarball.part" "$tarball"
fi
# An imported image has no metadata: give it what python:3.11-slim-bookworm sets.
"$docker" import --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' "$tarball" "$tag" >/dev/null
echo "docker/base.sh: imported $tarball as $tag" >&2
