"""A reporter that keeps what a run says, for tests that read its log lines."""

from __future__ import annotations

from engine.progress import Reporter


class Said(Reporter):
    """Keeps the message of every log line, in order (levels and fields are not kept)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def log(self, message: str, level: str = "INFO", **fields: object) -> None:
        self.lines.append(message)
