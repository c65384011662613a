"""``python -m soc``: the same as the ``soc`` command."""

from soc.cli import main

raise SystemExit(main())
