#!/usr/bin/env bash
# The main job: map the sample orthophoto with flair-inc-rgbie-15cl through qgis_process,
# headless, then render the styled map to a PNG. Called by `make demo`. MODEL=1 names that model
# (MODEL=0 is "Automatic", which picks among every registered model the bands can feed, FLAIR-HUB
# ones included, whose weights are other files).
#
# The default model's weights come from $FLAIR_WEIGHTS_DIR (a folder holding the official file
# FLAIR-INC_rgbie_15cl_resnet34-unet_weights.pth), else the Hugging Face cache, else the hub.
# When none is there the engine stops before any work and says how to get them.
set -euo pipefail
cd "$(dirname "$0")/.."
sample_dir=${1:-sample}
export QT_QPA_PLATFORM=offscreen
export FLAIR_ENGINE_PYTHON=${FLAIR_ENGINE_PYTHON:-$PWD/.venv/bin/python}
qgis_process=${QGIS_PROCESS:-/usr/bin/qgis_process.bin}  # Debian's qgis_process wrapper is broken

# Install the plugin as a user would: the built zip, unpacked into a plugin folder.
/usr/bin/python3 scripts/build_plugin_zip.py --out-dir "$sample_dir/dist" >/dev/null
rm -rf "$sample_dir/plugins" && mkdir -p "$sample_dir/plugins"
/usr/bin/python3 -m zipfile -e "$sample_dir"/dist/flair_qgis-*.zip "$sample_dir/plugins"
export QGIS_PLUGINPATH=$PWD/$sample_dir/plugins
"$qgis_process" plugins enable flair_qgis >/dev/null 2>&1 || true  # non-zero when already enabled

"$qgis_process" run flair:landcover -- \
  INPUT="$sample_dir/ortho_rgbie.tif" \
  MODEL=1 \
  OUTPUT="$PWD/$sample_dir/landcover.tif" \
  STATS="$PWD/$sample_dir/landcover_stats.csv"

/usr/bin/python3 scripts/render_map.py "$sample_dir/landcover.tif" "$sample_dir/landcover.png" \
  --ortho "$sample_dir/ortho_rgbie.tif"
echo "map: $sample_dir/landcover.tif (style: $sample_dir/landcover.qml), picture: $sample_dir/landcover.png"
