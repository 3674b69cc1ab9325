"""`python -m engine` is the same program as `flair-landcover`."""

from engine.cli import entry

entry()
