"""The geometry of a `predict` run, fixed before any tile is read: grids, area, tiling.

`prepare_run` is the planning step every run goes through, a `predict` and a region (on its
mosaic) alike: the model resolved and loaded, the raster's bands matched to its channels, the
value scale, then the plan.

The contract of extra model inputs (`ExtrasFactory`, `ExtrasProvider`) lives in
`engine.models.extras`, beside the architecture table that names each family's supplier.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from engine import protocol
from engine.area import Area, area_from_extent, area_from_polygons, whole_grid
from engine.device import DeviceChoice, choose_device
from engine.digest import sha256_once
from engine.errors import InvalidInput
from engine.grid import Grid
from engine.io.bands import BandMapping, resolve_raster_bands
from engine.io.tile_reader import value_scale_for
from engine.models.architectures import architecture_of
from engine.models.auto import resolve_auto_model
from engine.models.loader import LoadedModel, known_card, load_resolved, resolve_card
from engine.processing_grid import choose_processing_grid
from engine.progress import Reporter
from engine.runtime import torch_child
from engine.runtime.cached_cards import CachedCards, CardRequest, RememberedCard
from engine.runtime.choice import RuntimeChoice, check_backend
from engine.runtime.network import openvino_version
from engine.settings import DEFAULT_MARGIN_PX, DEFAULT_TILE_SIZE_PX, PredictSettings, RunOptions
from engine.tiling import Tiling


@dataclass(frozen=True)
class Plan:
    """The geometry of a run, fixed before any tile is read."""

    processing: Grid  # the whole processing grid of the raster
    area: Area  # the part of it to compute
    work: Grid  # the area's own grid
    output: Grid  # the grid the map is written on
    tiling: Tiling


def plan_run(
    settings: PredictSettings,
    loaded: LoadedModel,
    src,
    reporter: Reporter,
) -> tuple[Plan, bool]:
    """The run's grids, area and tiling; True as well when the processing grid is the source's
    own pixels (plain reads, no warping)."""
    card = loaded.card
    src_grid = Grid.of(src) if src.crs else None
    if src_grid is None or src.transform.b or src.transform.d:
        raise InvalidInput(
            f"{settings.input} has no CRS or a rotated grid; assign a CRS / warp it north-up first"
        )
    chosen = choose_processing_grid(src.crs, src_grid, card.res_m)
    reporter.log(chosen.reason)
    grid = chosen.grid
    if settings.mask:
        area = area_from_polygons(grid, settings.mask)
    elif settings.extent is not None:
        area = area_from_extent(grid, *settings.extent.in_crs_or(src.crs))
    else:
        area = whole_grid(grid)
    if settings.window is not None:  # a region's block: this window, the mask's polygons kept
        area = Area(settings.window, area.polygons)
    work = grid.subgrid(area.window)
    if settings.output_resolution == "input":
        if grid.crs != src.crs:
            raise InvalidInput(
                "--output-resolution input needs a projected input in metres; this input is "
                f"processed in {grid.crs.to_string()}: keep the default model resolution"
            )
        output = src_grid.subgrid(src_grid.clip(src_grid.window_of(work.bounds)))
    else:
        output = work
    fixed = loaded.architecture.fixed_tile
    if fixed:
        tile = card.tile_size_px if settings.tile_size_px is None else settings.tile_size_px
        if tile != card.tile_size_px:
            raise InvalidInput(
                f"model {card.name} runs on {card.tile_size_px} px tiles only "
                f"({loaded.architecture.title} is tied to that size)",
                option="--tile-size",
                model=card.name,
            )
    else:
        tile = settings.tile_size_px
        if tile is None:  # the card's own (FLAIR-HUB, MiT-B5), else ours
            tile = card.default_tile_px or DEFAULT_TILE_SIZE_PX
    margin = settings.margin_px
    if margin is None:  # the card's own margin (FLAIR-HUB: chosen by measurement), else ours
        margin = card.margin_px if card.margin_px is not None else DEFAULT_MARGIN_PX
    tiling = Tiling(work.height, work.width, tile, margin, fixed_size=fixed)
    return Plan(grid, area, work, output, tiling), chosen.same_as_source


@dataclass(frozen=True)
class Prepared:
    """A run ready to stream: its settings (the model resolved), the model, the bands that
    feed it, the value scale, and the plan."""

    settings: PredictSettings
    loaded: LoadedModel
    mapping: BandMapping
    scale: float | None  # None: the values are used as they are
    plan: Plan
    same_grid: bool  # the processing grid is the source's own pixels (plain reads)


def load_run_model(run: RunOptions, reporter: Reporter) -> LoadedModel:
    """The model of a run's options: a registry name (its weights fetched when allowed) or a
    checkpoint with its card and overrides.

    Where the run may use OpenVINO, the network is not built: the card this checkpoint resolved
    to before is read back (`engine.runtime.cached_cards`), or resolved in a child process the
    first time (`engine.runtime.torch_child`), and a conversion runs in one too, so such a run
    never imports torch. U-T&T, which runs on torch, is loaded here."""
    card, path = resolve_card(
        run.model,
        card_path=run.card_path,
        overrides=run.overrides,
        allow_download=run.allow_download,
        say=reporter.log,
    )
    if not _may_run_openvino(run):
        return load_resolved(card, path, run.overrides, reporter.log)
    request = CardRequest(path, sha256_once(path), card, run.overrides)
    cards = CachedCards()
    remembered = cards.find(request)
    if remembered is not None:
        for note in remembered.notes:
            reporter.log(note)
    elif card is None or not architecture_of(card).uses_sentinel2:
        # resolved in a child process: torch is never imported here (said as it comes)
        resolved, notes = torch_child.resolve_card(path, card, run.overrides, reporter)
        remembered = RememberedCard(resolved, notes)
        cards.remember(request, resolved, notes)
    if remembered is None or architecture_of(remembered.card).uses_sentinel2:
        # U-T&T runs on torch: its network is built here (what the loader says, said once)
        say = reporter.log if remembered is None else lambda message: None
        loaded = load_resolved(card, path, run.overrides, say)
        return replace(loaded, weights_sha256=request.weights_sha256)  # hashed once per run
    return LoadedModel(remembered.card, None, path, request.weights_sha256)


def _may_run_openvino(run: RunOptions) -> bool:
    """Whether the run's device and runtime choice leave OpenVINO possible (the CPU, backend
    not torch, OpenVINO installed); whether it runs is decided once the tile shape is known."""
    if check_backend(run.backend) == "torch":
        return False
    return not choose_device(run.device, run.precision).is_cuda and openvino_version() is not None


def prepare_run(
    settings: PredictSettings,
    src,
    reporter: Reporter,
    *,
    loaded: LoadedModel | None = None,
    has_sentinel2: bool = False,
) -> Prepared:
    """The planning step of a run on the open raster `src`: `--model auto` resolved, the bands
    checked against a known card before anything loads (a typo does not wait for a download),
    the model loaded (unless `loaded` is given: a region worker's, or a region's checked one),
    its channels matched to the raster's bands, the input scale and the plan."""
    model = resolve_auto_model(  # `--model auto`: chosen from the bands, said with why
        settings.model,
        src,
        settings.bands,
        settings.elevation,
        has_sentinel2,
        reporter.log,
        settings.allow_download,
    )
    settings = replace(settings, model=model)
    early_card = known_card(
        settings.model, card_path=settings.card_path, overrides=settings.overrides
    )
    if early_card is not None:
        resolve_raster_bands(
            src, early_card.channels, settings.bands, settings.elevation, early_card.name
        )
    if loaded is None:
        loaded = load_run_model(settings.run_options, reporter)
    card = loaded.card
    bands, elevation = settings.bands, settings.elevation
    mapping = resolve_raster_bands(src, card.channels, bands, elevation, card.name)
    scale = value_scale_for(src, mapping.ortho_bands, settings.input_max)
    plan, same = plan_run(settings, loaded, src, reporter)
    reporter.log(
        f"model {card.name} ({card.architecture}, {','.join(card.channels)}): {mapping.describe()}"
    )
    return Prepared(settings, loaded, mapping, scale, plan, same)


def run_record(
    ready: Prepared, choice: DeviceChoice, runtime: RuntimeChoice | None = None
) -> dict[str, Any]:
    """The `done` event's run record (`engine.protocol.run_record`): the model, the band of
    each channel, the runtime and the tiling that actually ran, so the plugin reads what ran
    from the event and never from the log's wording.

    `runtime` is the runtime layer's answer (torch or OpenVINO, and why: engine.runtime); None
    where no network was asked for yet (torch, from the device choice alone)."""
    card, architecture, settings = ready.loaded.card, ready.loaded.architecture, ready.settings
    mapping, tiling = ready.mapping, ready.plan.tiling
    return protocol.run_record(
        model={
            "name": card.name,
            "architecture": card.architecture,
            "title": architecture.title,
            "uses_sentinel2": architecture.uses_sentinel2,
        },
        channels=[
            {
                "channel": s.channel,
                "path": str(mapping.elevation_path if s.external else settings.input),
                "band": s.band,
            }
            for s in mapping.sources
        ],
        runtime={
            "name": runtime.runtime if runtime else "torch",
            "device": str(choice.device),
            "precision": runtime.precision if runtime else choice.precision,
            "why": f"{choice.reason}; {_precision_why(settings.precision, choice.is_cuda)}"
            + (f"; {runtime.runtime}: {runtime.reason}" if runtime else ""),
            "asked": runtime.asked if runtime else None,
            "check": runtime.check if runtime else None,
        },
        tiling={
            "tile_size_px": tiling.tile_size_px,
            "margin_px": tiling.margin_px,
            "batch": settings.batch_size,
        },
    )


def _precision_why(asked: str, cuda: bool) -> str:
    """Why the run has its precision, for the run record."""
    if asked != "auto":
        return f"precision {asked} requested"
    if cuda:
        return "automatic precision: bf16 where the GPU supports it, else fp16"
    return "automatic precision: fp32 on the CPU"
