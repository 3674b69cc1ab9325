#!/usr/bin/env bash
# The installer end to end, as a user on a newer QGIS runs it: the plugin zip unpacked into a
# fresh profile, `flair:install_engine` through qgis_process with the default torch choice (CPU,
# from PyTorch's own index) and the option to fall back to PyPI's torch when that index cannot be
# reached; then the new engine maps a generated raster with a generated checkpoint.
#
# Run inside a chroot by `make check-installer` (QGIS 3.40, Python 3.13, no pip configuration);
# it also runs on any machine with QGIS. Downloads about 5 GB when it falls back to PyPI's torch.
# The environment is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
qgis_process=${QGIS_PROCESS:-/usr/bin/qgis_process.bin}
work=$(mktemp -d "${TMPDIR:-/tmp}/flair-installer.XXXXXX")
trap 'rm -rf "$work"' EXIT
unset FLAIR_ENGINE_PYTHON  # the installer's own environment, not the developer's
export PIP_NO_CACHE_DIR=1  # no second copy of torch's 5 GB in pip's cache

export QT_QPA_PLATFORM=offscreen XDG_CONFIG_HOME=$work/config XDG_DATA_HOME=$work/data
python3 scripts/build_plugin_zip.py --out-dir "$work/dist" >/dev/null
mkdir -p "$work/plugins"
python3 -m zipfile -e "$work"/dist/flair_qgis-*.zip "$work/plugins"
export QGIS_PLUGINPATH=$work/plugins
"$qgis_process" plugins enable flair_qgis >/dev/null 2>&1 || true

echo "installer: $(python3 --version), $("$qgis_process" --version 2>/dev/null \
  | grep -m1 -o 'QGIS [0-9.]*' || echo 'QGIS ?')"
start=$SECONDS
"$qgis_process" run flair:install_engine -- TORCH=0 TORCH_FROM_PYPI_IF_UNREACHABLE=true \
  VENV_DIR="$work/engine" >"$work/install.log" 2>&1 || {
  tail -n 40 "$work/install.log"
  echo "installer: FAILED after $((SECONDS - start)) s" >&2
  exit 1
}
grep -iE "unreachable|cannot be reached|PyPI" "$work/install.log" | head -n 3 || true
engine=$work/engine/bin/python
echo "installer: engine built in $((SECONDS - start)) s, $(du -sh "$work/engine" | cut -f1)"

# the new engine maps: a generated 5-band raster and a FLAIR-INC checkpoint, on the CPU
"$engine" -m engine.health
"$engine" -m tests.fixtures.generate raster "$work/ortho.tif" --width 256 --height 256 --bands 5
"$engine" -m tests.fixtures.generate checkpoint "$work/unet.pth" --channels 5 --logits 19 \
  --layout flair-inc
"$engine" -m engine predict "$work/ortho.tif" "$work/map.tif" --model "$work/unet.pth" \
  --device cpu --tile-size 256 --margin 32
"$engine" -c "import rasterio, sys; a = rasterio.open(sys.argv[1]).read(1); \
assert a.shape == (256, 256) and 1 <= a.min() and a.max() <= 19, a; print('installer: map OK')" \
  "$work/map.tif"
echo "installer: passed in $((SECONDS - start)) s (repository $repo)"
