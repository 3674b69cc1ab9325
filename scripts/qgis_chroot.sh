#!/usr/bin/env bash
# Newer QGIS releases beside Debian 12's 3.22: Debian trixie (QGIS 3.40, Python 3.13) and sid
# (QGIS 3.44, Python 3.14) in debootstrap chroots, cached between runs.
#
#   scripts/qgis_chroot.sh build SUITE          create (or reuse) the chroot with QGIS in it
#   scripts/qgis_chroot.sh run SUITE CMD [ARG]  run CMD inside, in the repository's folder
#
# The repository (with its engine venv), ../shared and the venv's base Python are bind-mounted
# at the same paths, so the engine built on the host runs unchanged inside. Every mount lives in
# a private mount namespace (unshare) and disappears with the command: nothing stays mounted,
# and removing a chroot can never reach the host's files. Root only (debootstrap, chroot).
set -euo pipefail

ROOTS=${FLAIR_CHROOT_DIR:-/var/cache/flair-qgis-chroots}
MIRROR=${FLAIR_DEBIAN_MIRROR:-http://deb.debian.org/debian}
REPO=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$REPO/.venv}
PACKAGES=(qgis python3-qgis qgis-providers python3-pytest python3-venv xvfb xauth
  ca-certificates)
# Bump when PACKAGES or the set-up below changes, so a cached chroot is rebuilt.
RECIPE=2

usage() {
  echo "usage: $0 build SUITE | run SUITE CMD [ARG...]   (SUITE: trixie or sid)" >&2
  exit 2
}

[ $# -ge 2 ] || usage
action=$1 suite=$2
shift 2
case $suite in trixie | sid) ;; *) usage ;; esac
root=$ROOTS/$suite
[ "$(id -u)" -eq 0 ] || { echo "$0: needs root (debootstrap, chroot, mounts)" >&2; exit 1; }

# Run a command inside the chroot with /proc, /dev and /sys, plus extra "SRC" bind mounts,
# all in a private mount namespace.
in_chroot() {
  local mounts=$1
  shift
  unshare --mount --propagation private /bin/bash -euo pipefail -c '
    root=$1 mounts=$2; shift 2
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount --rbind /sys "$root/sys"
    for src in $mounts; do
      if [ -d "$src" ]; then mkdir -p "$root$src"; else
        mkdir -p "$(dirname "$root$src")"; [ -e "$root$src" ] || touch "$root$src"; fi
      mount --bind "$src" "$root$src"
    done
    exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
  ' bash "$root" "$mounts" "$@"
}

build() {
  mkdir -p "$ROOTS"
  exec 9>"$ROOTS/$suite.lock"
  flock 9
  if [ "$(cat "$root/.flair-recipe" 2>/dev/null)" = "$RECIPE" ]; then
    echo "chroot $suite: cached at $root ($(chroot "$root" dpkg-query -W -f='${Version}' qgis))"
    return
  fi
  command -v debootstrap >/dev/null || {
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
  }
  rm -rf "$root"
  local start=$SECONDS
  debootstrap --variant=minbase "$suite" "$root" "$MIRROR" >"$ROOTS/$suite.debootstrap.log"
  echo "chroot $suite: debootstrap in $((SECONDS - start)) s"
  # sid's Release can be past its Valid-Until for a machine's clock; HTTPS may go through a
  # proxy whose CA the host trusts.
  echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99flair-valid-until"
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" \
    2>/dev/null || true
  start=$SECONDS
  in_chroot "" /bin/sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends ${PACKAGES[*]} && update-ca-certificates \
    && apt-get clean" >"$ROOTS/$suite.apt.log"
  echo "chroot $suite: QGIS installed in $((SECONDS - start)) s"
  echo "$RECIPE" >"$root/.flair-recipe"
  echo "chroot $suite: ready at $root ($(chroot "$root" dpkg-query -W -f='${Version}' qgis))"
}

run() {
  [ $# -ge 1 ] || usage
  [ "$(cat "$root/.flair-recipe" 2>/dev/null)" = "$RECIPE" ] || {
    echo "$0: no chroot for $suite yet: run '$0 build $suite' first" >&2
    exit 1
  }
  local mounts=$REPO shared
  shared=$(cd "$REPO/.." && pwd)/shared
  [ -d "$shared" ] && mounts="$mounts $shared"
  # The engine venv, when there is one (the installer check builds its own and needs none):
  # its base interpreter too, a Python of its own (pyenv, uv, a build) mounted whole, a
  # distribution's /usr Python by its stdlib and binary, which the chroot lacks.
  local engine=() base version
  if [ -x "$VENV/bin/python" ]; then
    engine=("FLAIR_ENGINE_PYTHON=$VENV/bin/python")
    [ "$VENV" != "$REPO/.venv" ] && mounts="$mounts $VENV"
    base=$("$VENV/bin/python" -c 'import sys; print(sys.base_prefix)')
    version=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    if [ "$base" = /usr ]; then
      # /usr/bin/python3 is the chroot's own Python: the venv must name the versioned binary
      local link
      for link in python python3 "python$version"; do
        [ "$(readlink "$VENV/bin/$link")" != /usr/bin/python3 ] || {
          echo "$0: $VENV/bin/$link points at /usr/bin/python3, another Python inside the" \
            "chroot: recreate the venv (rm -rf $VENV; make engine-env)" >&2
          exit 1
        }
      done
      mounts="$mounts /usr/lib/python$version /usr/bin/python$version"
    else
      mounts="$mounts $base"
    fi
  fi
  # the chroot starts from an empty environment; these few pass through
  local passed=() name
  for name in CI FLAIR_QGIS_STRICT_API FLAIR_UPDATE_DOCS_IMAGES FLAIR_TORCH_INDEX; do
    [ -n "${!name+set}" ] && passed+=("$name=${!name}")
  done
  in_chroot "$mounts" /usr/bin/env QT_QPA_PLATFORM=offscreen "${engine[@]}" "${passed[@]}" \
    /bin/sh -c 'cd "$0" && exec "$@"' "$REPO" "$@"
}

case $action in
  build) build ;;
  run) run "$@" ;;
  *) usage ;;
esac
