"""Log lines as the deployed handlers write them, collected for assertions."""

from __future__ import annotations

import logging

from chalicelib import logging_setup


class Collect(logging.Handler):
    """Every line, formatted by the app's JSON formatter."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging_setup.JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
