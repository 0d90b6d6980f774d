"""``python -m ionmd.driver``: the ``ionmd`` command line (kept as a stable MPI launch target)."""

from ionmd.cli import main

raise SystemExit(main())
