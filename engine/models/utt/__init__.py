"""FLAIR-2 U-T&T: aerial U-Net fused with a U-TAE over a Sentinel-2 time series.

Public entry points: `build_utt_network` (card + checkpoint -> eval-mode network),
`is_utt_state_dict` (does a checkpoint hold U-T&T?), `default_utt_card` (the card of a
checkpoint given without one), `UTTNetwork` and `UTTConfig`, and the
metadata vector builders `encode_metadata` / `metadata_from_flair_entry`.

What a run feeds the network lives here too, beside it, so the architecture table can name its
supplier without importing any run: `predict_inputs` opens the Sentinel-2 source and loads the
series for a predict run (the table's `EXTRA_INPUTS` supplier), `inputs` cuts and counts each
tile's super-patch and metadata, `flair_patches` does the same for FLAIR dataset patches
(`evaluate`). They are imported by module, not re-exported here.
"""

from engine.models.utt.build import build_utt_network, is_utt_state_dict, network_state_dict
from engine.models.utt.card import default_utt_card
from engine.models.utt.metadata import (
    encode_metadata,
    flair_entry_for,
    load_flair_metadata,
    metadata_from_flair_entry,
    metadata_length,
)
from engine.models.utt.network import UTTConfig, UTTNetwork

__all__ = [
    "UTTConfig",
    "UTTNetwork",
    "build_utt_network",
    "default_utt_card",
    "encode_metadata",
    "flair_entry_for",
    "is_utt_state_dict",
    "load_flair_metadata",
    "metadata_from_flair_entry",
    "metadata_length",
    "network_state_dict",
]
