"""Standard output of the command line, shared by every command, and the form of its warnings
and of the input it quotes on standard error.

Output is flushed as it is written, so that a failure to write is raised where the command can
report it, not at interpreter exit. When the reader goes away (``savestate ... | head -1``), a
command goes on quietly, as other Unix tools do: what it still prints goes to the null device, a
command that writes files writes them all, and its exit status stays its own (``check``'s 1 for a
breaking change is not turned into a usage error, nor into a success).
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from typing import TextIO

__all__ = ["escaped", "quiet_stdout", "warning_printer", "write_stdout"]


def write_stdout(data: bytes | str) -> bool:
    """Write ``data`` (text, or bytes for a binary output) to standard output and flush it.

    Returns False when the reader has gone (a closed pipe): standard output then points at the
    null device, and the caller goes on. Raises ``OSError`` for any other failure to write (a
    full disk behind ``>``; ``EBADF`` when the command was started with standard output
    closed), which the caller reports naming standard output."""
    if sys.stdout is None:  # started with standard output closed
        raise OSError(errno.EBADF, "it is closed")
    try:
        if isinstance(data, str):
            sys.stdout.write(data)
            sys.stdout.flush()
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
    except BrokenPipeError:
        quiet_stdout()
        return False
    return True


def quiet_stdout() -> None:
    """Point standard output at the null device: its reader went away, and Python's flush at
    exit (of what is still buffered) must not report the closed pipe again."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (a test's stream)
        pass


def escaped(text: str) -> str:
    """``text`` with its control characters escaped (``\\x1b``): an error quotes what the
    input holds (a type URL), and a terminal must not act on an escape sequence in it."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in text)


def warning_printer(command: str) -> Callable[..., None]:
    """A ``warnings.showwarning`` for the command line: each warning the library emits (an
    ``UnknownFieldsDropped``) as one line on standard error, ``savestate COMMAND: warning:
    MESSAGE``. Python's own form names a file and a source line inside savestate, which say
    nothing about the input; the message names where in the input."""

    def show(
        message: Warning | str, category: type[Warning], filename: str, lineno: int,
        file: TextIO | None = None, line: str | None = None,
    ) -> None:
        stream = sys.stderr if file is None else file
        if stream is not None:  # started with standard error closed: nowhere to say it
            text = escaped(str(message)).replace("\n", "\\n")  # one line, as an error is
            print(f"savestate {command}: warning: {text}", file=stream)

    return show
