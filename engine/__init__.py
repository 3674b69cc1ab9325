"""FLAIR land-cover engine: runs IGN's FLAIR models on orthophotos, with no QGIS dependency."""

__version__ = "0.1.0"
