"""A progress bar on standard error for the command line's long reads.

The bar is drawn only when standard error is a terminal, and only for inputs of at least
``LARGE_INPUT`` bytes (smaller ones are read before a bar would be seen); it is redrawn in
place (a carriage return, no new lines) when the shown figure changes, and erased once the
read is done, so that what a command prints is left as it was.
"""

from __future__ import annotations

from typing import TextIO

__all__ = ["LARGE_INPUT", "ProgressBar", "progress_bar"]

# Inputs from this size up get a bar: 16 MiB.
LARGE_INPUT = 16 << 20


class ProgressBar:
    """A progress callback (``bar(done, total)``, in bytes) drawing one line on ``stream``::

        reading vm.snapshot [###########.................]  41%  420/1024 MiB
    """

    def __init__(self, stream: TextIO, label: str, width: int = 28) -> None:
        self.stream = stream
        self.label = label
        self.width = width
        self._shown: tuple[int, int] | None = None  # (filled, percent) last drawn

    def __call__(self, done: int, total: int) -> None:
        """Show ``done`` of ``total`` bytes (nothing for an input under ``LARGE_INPUT``)."""
        if total < LARGE_INPUT:
            return
        done = min(max(done, 0), total)
        filled = self.width * done // total
        percent = 100 * done // total
        if (filled, percent) == self._shown:
            return
        self._shown = (filled, percent)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {percent:3d}%  "
                          f"{done >> 20}/{total >> 20} MiB")
        self.stream.flush()

    def close(self) -> None:
        """Erase the bar, if one was drawn."""
        if self._shown is not None:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = None


def progress_bar(stream: TextIO, label: str) -> ProgressBar | None:
    """A ``ProgressBar`` on ``stream`` when it is a terminal, else None (no bar in a pipe,
    a file or a log)."""
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return None
    return ProgressBar(stream, label) if terminal else None
