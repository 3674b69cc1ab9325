"""Seeded generators for the evaluation tests: label rasters and FLAIR-format dataset folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.fixtures.generate import make_orthophoto

ORIGIN_XY = (652000.0, 6862000.0)
DOMAINS = ("D022_2021", "D026_2020", "D064_2021")


def write_codes(
    path: Path,
    codes: np.ndarray,
    res_m: float = 0.2,
    origin_xy: tuple[float, float] = ORIGIN_XY,
    epsg: int = 2154,
    nodata: int | None = 0,
) -> Path:
    """A single-band uint8 GeoTIFF of `codes` (H, W) with a real CRS and transform."""
    import rasterio
    from rasterio.transform import from_origin

    profile = {
        "driver": "GTiff",
        "width": codes.shape[1],
        "height": codes.shape[0],
        "count": 1,
        "dtype": "uint8",
        "crs": f"EPSG:{epsg}",
        "transform": from_origin(origin_xy[0], origin_xy[1], res_m, res_m),
    }
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(codes.astype(np.uint8), 1)
    return Path(path)


def blob_codes(
    height: int,
    width: int,
    seed: int,
    codes: tuple[int, ...] = tuple(range(1, 20)),
    cell_px: int = 16,
) -> np.ndarray:
    """Blocky random labels drawn from `codes`."""
    rng = np.random.default_rng(seed)
    coarse = rng.choice(np.array(codes), size=(-(-height // cell_px), -(-width // cell_px)))
    return np.kron(coarse, np.ones((cell_px, cell_px), dtype=coarse.dtype))[:height, :width]


def make_flair_folder(
    root: Path,
    domains: tuple[str, ...] = DOMAINS,
    patches_per_domain: int = 2,
    size_px: int = 64,
    separate_labels: bool = False,
) -> list[Path]:
    """A FLAIR #1/#2 folder: <domain>/<zone>/img/IMG_<id>.tif and msk/MSK_<id>.tif.

    With `separate_labels`, images go under `root/aerial` and masks under `root/labels` (the
    `flair_aerial_*` / `flair_labels_*` split of the FLAIR #2 release). Returns the image paths.
    """
    images = []
    n = 0
    for d, domain in enumerate(domains):
        zone = f"Z{d + 1}_UN"
        base_img = root / "aerial" if separate_labels else root
        base_msk = root / "labels" if separate_labels else root
        img_dir = base_img / domain / zone / "img"
        msk_dir = base_msk / domain / zone / "msk"
        img_dir.mkdir(parents=True, exist_ok=True)
        msk_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(patches_per_domain):
            n += 1
            origin = (ORIGIN_XY[0] + 1000 * d + size_px * 0.2 * n, ORIGIN_XY[1])
            image = make_orthophoto(
                img_dir / f"IMG_{n:06d}.tif", size_px, size_px, bands=5, origin_xy=origin, seed=n
            )
            write_codes(
                msk_dir / f"MSK_{n:06d}.tif",
                blob_codes(size_px, size_px, seed=100 + n),
                origin_xy=origin,
                nodata=None,
            )
            images.append(image)
    return images


def make_hub_folder(
    root: Path,
    domain: str = "D004-2021",
    roi: str = "AB-S1-01",
    patches: int = 2,
    size_px: int = 64,
) -> list[Path]:
    """A FLAIR-HUB folder: <domain>_AERIAL_RGBI/<roi>/AERIAL_RGBI_<domain>_<roi>_<n>.tif and
    the matching AERIAL_LABEL-COSIA files with 0-based COSIA labels. Returns the label paths."""
    img_dir = root / f"{domain}_AERIAL_RGBI" / roi
    lab_dir = root / f"{domain}_AERIAL_LABEL-COSIA" / roi
    img_dir.mkdir(parents=True)
    lab_dir.mkdir(parents=True)
    labels = []
    for n in range(patches):
        make_orthophoto(
            img_dir / f"AERIAL_RGBI_{domain}_{roi}_{n}.tif", size_px, size_px, bands=4, seed=n
        )
        labels.append(
            write_codes(
                lab_dir / f"AERIAL_LABEL-COSIA_{domain}_{roi}_{n}.tif",
                blob_codes(size_px, size_px, n, codes=tuple(range(19))),
                nodata=None,
            )
        )
    return labels


def add_flair2_sentinel(
    root: Path,
    size_px: int = 50,
    dates: tuple[str, ...] = ("0315", "0612", "0904"),
    cloudy: tuple[int, ...] = (),
) -> None:
    """FLAIR-2 Sentinel-2 files beside a `make_flair_folder` tree: one super-area per zone
    (`<domain>/<zone>/sen/SEN2_sp_<domain>-<zone>_{data,masks}.npy`, `_products.txt`) and
    `flair-2_centroids_sp_to_patch.json` putting every patch at the super-area's centre.
    Dates whose index is in `cloudy` are fully clouded (the FLAIR-2 filter drops them)."""
    import json

    rng = np.random.default_rng(7)
    centroids = {}
    for img_dir in sorted(root.rglob("img")):
        zone_dir = img_dir.parent
        domain, zone = zone_dir.parent.name, zone_dir.name
        sen = zone_dir / "sen"
        sen.mkdir(exist_ok=True)
        stem = f"SEN2_sp_{domain}-{zone}"
        t = len(dates)
        np.save(
            sen / f"{stem}_data.npy",
            rng.integers(200, 3000, size=(t, 10, size_px, size_px)).astype(np.int16),
        )
        masks = np.zeros((t, 2, size_px, size_px), dtype=np.uint8)
        for i in cloudy:
            masks[i, 1] = 100
        np.save(sen / f"{stem}_masks.npy", masks)
        (sen / f"{stem}_products.txt").write_text(
            "\n".join(f"SENTINEL2X_2021{d}-105910-000_L2A_T31TCJ_D" for d in dates) + "\n"
        )
        for image in sorted(img_dir.glob("IMG_*.tif")):
            centroids[image.name] = [size_px // 2, size_px // 2]
    (root / "flair-2_centroids_sp_to_patch.json").write_text(json.dumps(centroids))
