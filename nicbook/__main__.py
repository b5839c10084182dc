"""``python -m nicbook``: the command-line interface (see :mod:`nicbook.cli`)."""

from nicbook.cli import main

raise SystemExit(main())
