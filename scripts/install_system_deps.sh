#!/usr/bin/env bash
# Debian 12 packages the project needs: QGIS 3.22 (with its Python), pytest for QGIS's Python,
# venv for the engine environment, Xvfb (xvfb-run) for the test that drives the algorithm
# dialog on a virtual display, debootstrap for the newer QGIS releases in chroots
# (scripts/qgis_chroot.sh). Idempotent; uses sudo when not root.
set -euo pipefail
need=(qgis python3-qgis qgis-providers python3-pytest python3-venv python3-pip xvfb xauth
  debootstrap)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
