"""``ionmd assess``: learning curves, locality scans, transport checks and cost of candidate models.

One library function per part (see :mod:`ionmd.assess.learning`,
:mod:`ionmd.assess.transport`, :mod:`ionmd.assess.report`); the CLI
(:mod:`ionmd.assess.cli`) is a thin shell over :func:`ionmd.assess.report.run_assess`.
Schema of the TOML: docs/assess.md.
"""
