"""Shared checks of the TOML configuration readers (sweep, study, learn).

Every reader names the file and the dotted key in its errors, in one form:
``<file>: key 'md.temprature': unknown key (allowed: ...)``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ionmd.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def key_error(path: str | Path, key: str, message: str) -> InputError:
    """The error for a bad ``key`` of the configuration file ``path``: ``<path>: key '<key>': <message>``."""
    return InputError(f"{path}: key '{key}': {message}")


def check_keys(path: str | Path, table: dict[str, Any], allowed: Iterable[str], prefix: str = "") -> None:
    """Raise :func:`key_error` for the first key of ``table`` not in ``allowed``.

    Parameters
    ----------
    path
        The configuration file (for the message).
    table
        The TOML table to check.
    allowed
        The keys the table may hold (a set, or a dict keyed by them).
    prefix
        Dotted name of the table (``"md"``, ``"models.mace"``); empty for the top level.
    """
    allowed = set(allowed)
    for key in table:
        if key not in allowed:
            raise key_error(path, f"{prefix}.{key}" if prefix else key,
                            f"unknown key (allowed: {', '.join(sorted(allowed))})")


def read_toml(path: Path, missing_message: str) -> dict[str, Any]:
    """Parse the TOML file ``path``; :class:`InputError` with ``missing_message`` when it is not a file.

    A file that is not valid TOML (or not UTF-8 text) raises ``<path>: not valid TOML: <reason>``.
    """
    if not path.is_file():
        raise InputError(missing_message)
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None
