"""Running U-T&T: the Sentinel-2 inputs of each tile (predict) or FLAIR patch (evaluate).

The network itself lives in `engine.models.utt`; this package is what a run feeds it: `run`
opens the Sentinel-2 source and loads the series for a predict run, `inputs` cuts and counts
each tile's super-patch and metadata, `flair_patches` does the same for FLAIR dataset patches.
"""
