"""``python -m polyrelay``: the command line."""

from .cli import main

raise SystemExit(main())
