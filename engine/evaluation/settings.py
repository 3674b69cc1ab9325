"""Settings of `evaluate`: two frozen records, one per mode, validated once at the boundary."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidInput

MIN_BLOCK_PX = 16


@dataclass(frozen=True)
class ReportOptions:
    """Where the report goes and what it holds."""

    folder: Path
    nomenclature: str = "auto"  # auto, flair19, baseline13 or model
    plots: bool = True


@dataclass(frozen=True)
class RasterEvaluation:
    """A prediction raster scored against a reference raster (any grid), optionally masked."""

    prediction: Path | str
    reference: Path | str
    report: ReportOptions
    mask: Path | str | None = None
    block_px: int = 1024

    def __post_init__(self) -> None:
        if self.block_px < MIN_BLOCK_PX:
            raise InvalidInput(f"--block-size {self.block_px} is too small; use 256 or more")


@dataclass(frozen=True)
class DatasetEvaluation:
    """A model run over a FLAIR-format dataset folder and scored against its labels."""

    data: Path
    model: str
    report: ReportOptions
    card_path: Path | None = None
    allow_download: bool = False
    sentinel2: str | None = None  # flair:PATH for U-T&T models
    domains: tuple[str, ...] | None = None
    limit: int | None = None
    batch_size: int = 4
    device: str = "auto"
    backend: str | None = None  # --backend (engine.runtime); None: $FLAIR_BACKEND, else auto
    threads: int | None = None
    label_encoding: str | None = None  # None: from the dataset (COSIA for FLAIR-HUB labels)
    worst: int = 20

    def __post_init__(self) -> None:
        for name, value in (
            ("limit", self.limit),
            ("batch-size", self.batch_size),
            ("threads", self.threads),
        ):
            if value is not None and value < 1:
                raise InvalidInput(f"--{name} {value} must be 1 or more")


def evaluation_from_args(args: argparse.Namespace) -> RasterEvaluation | DatasetEvaluation:
    """The mode and its settings from `evaluate`'s parsed options (paths made absolute)."""
    from engine.cli_values import input_path

    rasters = args.prediction is not None or args.reference is not None
    dataset = args.data is not None or args.model is not None
    if rasters == dataset:
        raise InvalidInput(
            "give either --prediction MAP.tif --reference LABELS.tif, or --data FOLDER --model "
            "NAME (not both, not neither)"
        )
    report = ReportOptions(
        args.report.expanduser().absolute(), args.nomenclature, not args.no_plots
    )
    if rasters:
        if args.prediction is None or args.reference is None:
            raise InvalidInput("--prediction and --reference go together; give both")
        return RasterEvaluation(
            prediction=input_path(str(args.prediction), "--prediction"),
            reference=input_path(str(args.reference), "--reference"),
            report=report,
            mask=input_path(str(args.mask), "--mask") if args.mask else None,
            block_px=args.block_size,
        )
    if args.data is None or args.model is None:
        raise InvalidInput("--data and --model go together; give both")
    domains = tuple(d.strip() for d in (args.domains or "").split(",") if d.strip())
    return DatasetEvaluation(
        data=args.data.expanduser().absolute(),
        model=args.model,
        report=report,
        card_path=args.card,
        allow_download=args.allow_download,
        sentinel2=args.sentinel2,
        domains=domains or None,
        limit=args.limit,
        batch_size=args.batch_size,
        device=args.device,
        backend=args.backend,
        threads=args.threads,
        label_encoding=None if args.label_encoding == "auto" else args.label_encoding,
        worst=max(args.worst or 0, 0),
    )
