"""Evaluation of land-cover maps against reference labels.

Two entry points share one metrics core:

- `compare_rasters.compare_rasters`: any prediction raster against any reference raster, the
  reference aligned onto the prediction's grid by nearest resampling, block by block.
- `dataset_run.evaluate_dataset`: a model run patch by patch over a FLAIR-format folder
  (FLAIR #1/#2 or FLAIR-HUB layouts), through the same `Predictor` as `predict`.

Both accumulate one `ConfusionMatrix` over FLAIR codes; `metrics.compute_metrics` turns it into
per-class IoU, precision, recall and F1, mIoU and overall accuracy for a `Nomenclature` (the 19
codes, the 13-class baseline grouping, or a model's active classes); `report.write_report`
writes the report folder.
"""
