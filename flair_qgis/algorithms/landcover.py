"""`flair:landcover`: FLAIR land-cover segmentation of an orthophoto, run by the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingUtils,
    QgsRasterLayer,
)

from ..engine_command import (
    CHANNELS,
    PredictRequest,
    acquisition_date,
    engine_command,
    runtime_summary,
    sentinel2_spec,
)
from ..engine_locator import engine_environment, require_engine
from ..engine_runner import run_engine
from ..export import check_budget, export_layer, is_rgba_image, layer_file_path, plan_export
from ..models import AUTO, model_choices
from ..styling import ensure_style_file, name_results
from .base import FlairAlgorithm, engine_path
from .landcover_params import OUTPUTS, LandcoverParameters, landcover_help

MODEL_RES_M = 0.2


class LandcoverAlgorithm(LandcoverParameters, FlairAlgorithm):
    """Runs `engine predict` on a raster layer and loads the styled land-cover map."""

    def name(self) -> str:
        return "landcover"

    def displayName(self) -> str:  # noqa: N802
        return self.tr("FLAIR land-cover segmentation")

    def shortHelpString(self) -> str:  # noqa: N802
        # qgis_process prints the help as it is: plain text there, HTML in the dialog
        return landcover_help(plain=QgsApplication.platform() == "qgis_process")

    def processAlgorithm(  # noqa: N802
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        engine = require_engine(feedback)
        feedback.pushInfo(
            f"FLAIR engine: {engine.python} (from {engine.origin})"
            + (f", engine source {engine.pythonpath}" if engine.pythonpath else "")
        )
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None or not layer.isValid():
            raise QgsProcessingException("INPUT is not a valid raster layer.")
        model, card = self._model(parameters, context)
        rgba = is_rgba_image(layer)
        # only the bands the user set: the engine's band rule completes the others
        bands = {"R": 1, "G": 2, "B": 3} if rgba else self._bands(parameters, context, layer)
        extent = None
        if parameters.get(self.EXTENT) not in (None, ""):
            extent = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())
        limit = self.parameterAsInt(parameters, self.EXPORT_PIXEL_LIMIT, context)

        input_path, plan = self._input_file(layer, extent, limit, feedback)
        if rgba and model != AUTO:
            feedback.pushWarning(
                "The layer is a rendered image (WMS/XYZ): only its red, green "
                "and blue exist; choose an RGB model (or Automatic)."
            )
        elevation = self._elevation(parameters, context, layer, extent, plan, limit, feedback)
        if elevation:  # elevation comes from the separate raster
            bands.pop("E", None)

        outputs = {  # the engine's output table: one destination parameter per output
            o.field: engine_path(
                (
                    self.parameterAsFileOutput
                    if o.kind == OUTPUTS.FILE
                    else self.parameterAsOutputLayer
                )(parameters, o.field, context)
                or ""
            )
            for o in OUTPUTS.plugin_outputs()
        }
        request = PredictRequest(
            input_path=str(input_path),
            output_path=outputs[self.OUTPUT],
            model=model,
            bands=bands,
            card_path=card,
            elevation=elevation,
            extent=None
            if extent is None or plan is not None
            else (extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()),
            mask_path=self._mask(parameters, context, feedback),
            device=self.DEVICE_VALUES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            backend=self.BACKEND_VALUES[self.parameterAsEnum(parameters, self.BACKEND, context)],
            tile_size_px=self.parameterAsInt(parameters, self.TILE_SIZE, context),
            margin_px=self._optional_int(parameters, self.MARGIN, context, -1),
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            output_resolution=self.RESOLUTION_VALUES[
                self.parameterAsEnum(parameters, self.OUTPUT_RESOLUTION, context)
            ],
            other_outputs={k: v for k, v in outputs.items() if k != self.OUTPUT},
            sentinel2=self._sentinel2(parameters, context),
            year=self._optional_int(parameters, self.YEAR, context, 0),
            acquisition_date=self._acquisition_date(parameters, context),
            strict=self.parameterAsBool(parameters, self.STRICT_SENTINEL2, context),
        )
        shown_model = "automatic (the engine says which and why)" if model == AUTO else model
        rule = "band descriptions, colour interpretation, then order"
        shown_bands = (
            f"{', '.join(f'{c}={b}' for c, b in bands.items())}, the others automatic ({rule})"
            if bands
            else f"automatic ({rule})"
        )
        feedback.pushInfo(
            f"Model: {shown_model}; bands: {shown_bands}"
            + (f"; elevation {elevation}" if elevation else "")
        )
        cleanup = [v for v in outputs.values() if v]
        done = run_engine(
            engine_command(engine.python, request.arguments()),
            feedback,
            cleanup,
            env=engine_environment(engine.pythonpath),
        )
        ensure_style_file(outputs[self.OUTPUT])
        used = model_run(done) or _model_name(model)
        name_results(
            context,
            outputs[self.OUTPUT],
            outputs[self.CONFIDENCE],
            f"{layer.name()} - {used}",
            outputs[self.POLYGONS],
        )
        for summary in (runtime_summary(done), stats_summary(done.get("stats") or {})):
            if summary:
                feedback.pushInfo(summary)
        return {key: value for key, value in outputs.items() if value}

    # parameter helpers -----------------------------------------------------------------------
    def _model(self, parameters: dict[str, Any], context: QgsProcessingContext) -> tuple[str, str]:
        """(model argument, card path); which architecture it is, the engine says."""
        card = self.parameterAsFile(parameters, self.MODEL_CARD, context) or ""
        model_file = self.parameterAsFile(parameters, self.MODEL_FILE, context) or ""
        if model_file:
            return model_file, card
        choices = model_choices()
        index = self.parameterAsEnum(parameters, self.MODEL, context)
        entry = choices[index] if 0 <= index < len(choices) else choices[0]
        return entry.name, card

    def _bands(
        self, parameters: dict[str, Any], context: QgsProcessingContext, layer: QgsRasterLayer
    ) -> dict[str, int]:
        """The bands the user set, by channel (R, G, B, NIR, E); the engine completes the rest
        by its own band rule, so there is one rule, not two."""
        names = (self.BAND_RED, self.BAND_GREEN, self.BAND_BLUE, self.BAND_NIR, self.BAND_ELEVATION)
        bands = {
            channel: number
            for channel, name in zip(CHANNELS, names, strict=True)
            if (number := self._optional_int(parameters, name, context, 0)) > 0
        }
        for number in bands.values():
            if not 1 <= number <= layer.bandCount():
                raise QgsProcessingException(
                    f"Band {number} does not exist: {layer.name()} has {layer.bandCount()} bands."
                )
        return bands

    def _optional_int(
        self, parameters: dict[str, Any], name: str, context: QgsProcessingContext, default: int
    ) -> int:
        if parameters.get(name) in (None, ""):
            return default
        return self.parameterAsInt(parameters, name, context)

    def _input_file(
        self, layer: QgsRasterLayer, extent, limit: int, feedback: QgsProcessingFeedback
    ):
        """(path the engine reads, export plan or None when the layer's own file is used)."""
        direct = layer_file_path(layer)
        if direct is not None:
            return direct, None
        plan = plan_export(layer, extent, MODEL_RES_M)
        check_budget(plan, limit, MODEL_RES_M)
        path = Path(QgsProcessingUtils.generateTempFilename("flair_input.tif"))
        feedback.pushInfo(
            f"{layer.name()} is not a plain raster file: exporting "
            f"{plan.width_px} x {plan.height_px} px at {MODEL_RES_M} m "
            f"({plan.crs.authid()}) to {path}"
        )
        return export_layer(layer, plan, path, feedback), plan

    def _elevation(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        layer: QgsRasterLayer,
        extent,
        plan,
        limit: int,
        feedback: QgsProcessingFeedback,
    ) -> str:
        """`PATH[:BAND]` of a separate elevation raster, or '' when the input carries it."""
        elevation = self.parameterAsRasterLayer(parameters, self.ELEVATION, context)
        if elevation is None:
            return ""
        band = self._optional_int(parameters, self.ELEVATION_BAND, context, 1) or 1
        path = layer_file_path(elevation)
        if path is None:
            grid = plan or plan_export(layer, extent, MODEL_RES_M)
            check_budget(grid, limit, MODEL_RES_M)
            path = Path(QgsProcessingUtils.generateTempFilename("flair_elevation.tif"))
            feedback.pushInfo(f"Exporting elevation layer {elevation.name()} to {path}")
            export_layer(elevation, grid, path, feedback)
        return f"{path}:{band}"

    def _mask(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> str:
        if parameters.get(self.MASK) in (None, ""):
            return ""
        return self.parameterAsCompatibleSourceLayerPath(
            parameters, self.MASK, context, ["gpkg", "shp"], "gpkg", feedback
        )

    def _acquisition_date(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str:
        text = self.parameterAsString(parameters, self.ACQUISITION_DATE, context) or ""
        try:
            return acquisition_date(text)
        except ValueError as exc:
            raise QgsProcessingException(str(exc)) from exc

    def _sentinel2(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
    ) -> str | None:
        """The Sentinel-2 source asked for; for a model that takes none, the engine says it
        ignores it (its architecture table knows, the plugin does not guess)."""
        kind = self.SENTINEL2_VALUES[
            self.parameterAsEnum(parameters, self.SENTINEL2_SOURCE, context)
        ]
        location = self.parameterAsString(parameters, self.SENTINEL2_LOCATION, context) or ""
        try:
            return sentinel2_spec(kind, location)
        except ValueError as exc:
            raise QgsProcessingException(str(exc)) from exc


def stats_summary(stats: dict[str, Any], top: int = 5) -> str:
    """ "Mapped 0.0033 km²: brushwood 80.2 %, other 18.8 %, ..." from the engine's stats.

    The map's area in km², as the engine's log gives it; hectares are for per-class tables."""
    classes = [c for c in stats.get("classes", []) if isinstance(c, dict) and c.get("percent")]
    if not classes:
        return ""
    classes.sort(key=lambda c: -float(c["percent"]))
    shares = ", ".join(
        f"{c.get('name', c.get('code'))} {float(c['percent']):.1f} %" for c in classes[:top]
    )
    area = stats.get("mapped_area_m2")
    if area is None:
        return f"Classes: {shares}"
    return f"Mapped {float(area) / 1e6:.4f} km\u00b2: {shares}"


def model_run(done: dict[str, Any]) -> str:
    """The model the engine ran, from the done event's run record ('' when it has none)."""
    run = done.get("run") if isinstance(done.get("run"), dict) else {}
    model = run.get("model") if isinstance(run.get("model"), dict) else {}
    name = str(model.get("name") or "")
    return _model_name(name) if name else ""


def _model_name(model: str) -> str:
    """A model as a layer name shows it: a checkpoint by its file name."""
    suffixes = (".pth", ".ckpt", ".pt", ".safetensors")
    return Path(model).stem if model.endswith(suffixes) else model
