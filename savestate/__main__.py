"""``python -m savestate``: the command line (see :mod:`savestate.cli`)."""

from .cli import main

raise SystemExit(main())
