"""Log lines as the deployed handlers write them, collected for assertions."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from chalicelib import logging_setup


class Collect(logging.Handler):
    """Every line, formatted by the app's JSON formatter."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging_setup.JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class _CurrentStdout:
    """Whatever sys.stdout is when a line is written (capsys swaps it per test phase)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@contextmanager
def app_lines_on_stdout(*loggers: logging.Logger) -> Iterator[None]:
    """The app's own stdout handlers write to sys.stdout as it is (capsys's, in a test).

    They hold the stream they were made with, at import; in Lambda that is stdout,
    where a request's line (access record and metrics) and a stream batch's metric
    line both go.
    """
    names = [logging.getLogger(logging_setup.ACCESS_LOGGER), *loggers]
    ours = [h for logger in names for h in logger.handlers
            if type(h) is logging.StreamHandler]
    previous = [h.setStream(_CurrentStdout()) for h in ours]  # type: ignore[arg-type]
    try:
        yield
    finally:
        for handler, stream in zip(ours, previous, strict=True):
            handler.setStream(stream)
