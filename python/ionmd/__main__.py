"""``python -m ionmd`` runs the command-line interface."""

from ionmd.cli import main

raise SystemExit(main())
