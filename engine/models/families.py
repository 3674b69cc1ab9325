"""The facts of each architecture family, in plain Python: names, titles, tiling, extra inputs.

The one list of families. `engine.models.card` checks a card's `architecture` against it,
`engine.models.architectures` gives each family its behaviour (key layout, build, forward) and
its contract test checks both list the same names, and the run record of the `done` event states
these facts, so the plugin never tests an architecture by name. It imports nothing but the
standard library: the plugin may load it by file path (`flair_qgis.engine_shared`).
"""

from __future__ import annotations

from dataclasses import dataclass

SENTINEL2 = "sentinel2"
"""The extra inputs of a family that fuses the aerial tile with a Sentinel-2 time series."""


@dataclass(frozen=True)
class Family:
    """What is known of a family without torch.

    Attributes:
        name: the card's `architecture` value.
        decoder: the decoder as messages name it ("U-Net", "UPerNet").
        title: the family in messages, with its article ("a U-Net", "a FLAIR-HUB UPerNet").
        unet: True when the map comes from a U-Net decoder (FLAIR-INC's and FLAIR-HUB's).
        fixed_tile: True when the network runs on the card's tile size only.
        extra_inputs: the inputs besides the aerial tile (`SENTINEL2`), None for none.
    """

    name: str
    decoder: str
    title: str
    unet: bool = False
    fixed_tile: bool = False
    extra_inputs: str | None = None

    @property
    def uses_sentinel2(self) -> bool:
        """Whether a run needs a Sentinel-2 source."""
        return self.extra_inputs == SENTINEL2

    def facts(self) -> dict[str, object]:
        """The family as JSON values, for the run record."""
        return {
            "architecture": self.name,
            "title": self.title,
            "decoder": self.decoder,
            "unet": self.unet,
            "fixed_tile": self.fixed_tile,
            "uses_sentinel2": self.uses_sentinel2,
        }


# Swin is built for one tile size, and FLAIR-HUB's networks depend on the whole tile: every tile
# runs at the card's size (edge tiles padded), chosen by measurement (README).
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("unet", "U-Net", "a U-Net", unet=True),
        Family("fpn", "FPN", "an FPN"),
        Family("deeplabv3", "DeepLabV3", "a DeepLabV3"),
        Family("utt", "U-T&T", "a U-T&T network", fixed_tile=True, extra_inputs=SENTINEL2),
        Family("flairhub-upernet", "UPerNet", "a FLAIR-HUB UPerNet", fixed_tile=True),
        Family("flairhub-unet", "U-Net", "a FLAIR-HUB U-Net", unet=True, fixed_tile=True),
    )
}

ARCHITECTURE_NAMES: tuple[str, ...] = tuple(FAMILIES)


def family(name: str) -> Family | None:
    """The family of a card's `architecture` value, None when the engine knows none."""
    return FAMILIES.get(name)
