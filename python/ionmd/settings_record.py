"""Record the settings of a resumable output, or refuse one made with other settings.

A resumable stage (a study directory, a fit directory) writes the settings it was
started with to a JSON file the first time; a later run in the same place must bring
equal settings, or it is refused with the keys that differ, so that a resume never
mixes the results of two different runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ionmd.errors import InputError
from ionmd.jsonfile import read_json, write_json_atomic

_SHOWN_KEYS = 8
"""At most this many differing keys are named (then ``and N more``)."""


def _as_json(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` as they read back from the record (tuples as lists, paths as strings)."""
    return json.loads(json.dumps(dict(settings), default=str))


def differing_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys where ``old`` and ``new`` differ, descending into tables present in both.

    A key in one and not the other counts as differing; a value that is not a table on
    both sides is compared whole (a list that differs anywhere is one key).

    Examples
    --------
    >>> differing_keys({"md": {"n_prod": 500, "dt_fs": 2}}, {"md": {"n_prod": 600, "dt_fs": 2}})
    ['md.n_prod']
    """
    if isinstance(old, dict) and isinstance(new, dict):
        keys: list[str] = []
        for key in sorted(set(old) | set(new)):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                keys.append(name)
            elif old[key] != new[key]:
                keys += differing_keys(old[key], new[key], name)
        return keys
    return [] if old == new else [prefix or "(the whole record)"]


def with_defaults(record: Any, defaults: Any) -> Any:
    """``record`` with every key of ``defaults`` it lacks filled in, descending into tables.

    A record written before a defaulted key existed then compares equal to settings that
    leave that key at its default, and unequal to settings that set another value. Keys
    the record holds are never changed; ``record`` itself is not modified. A table of
    defaults given for a list of tables (``"models": {...}``) applies to each of them.

    Examples
    --------
    >>> with_defaults({"md": {"n_prod": 500}}, {"md": {"n_prod": 100, "thermostat": "nose-hoover"}})
    {'md': {'n_prod': 500, 'thermostat': 'nose-hoover'}}
    """
    if isinstance(record, list) and isinstance(defaults, dict):
        return [with_defaults(item, defaults) for item in record]
    if not (isinstance(record, dict) and isinstance(defaults, dict)):
        return record
    filled = dict(record)
    for key, default in defaults.items():
        filled[key] = with_defaults(record[key], default) if key in record else default
    return filled


def check_or_record(path: str | Path, settings: Mapping[str, Any], *, what: str, hint: str,
                    defaults: Mapping[str, Any] | None = None) -> bool:
    """Write ``settings`` to ``path``, or check them against the record already there.

    Parameters
    ----------
    path
        The JSON record (its directory is created).
    settings
        JSON-serialisable settings (tuples and paths are compared as JSON stores them).
    what
        What the record belongs to, for the message (``"the study in /x"``, ``"this fit"``).
    hint
        What the user can do instead (``"choose another --out"``).
    defaults
        The default of each defaulted key, nested like ``settings`` (any subset of its
        keys). A key absent from an existing record counts as holding its default there
        (:func:`with_defaults`): a record made before the key existed resumes when the
        key is left at its default, and is refused when it is set to another value. A
        resume that needed a default rewrites the record with ``settings`` (then explicit).

    Returns
    -------
    bool
        True when ``path`` already held these settings (a resume), False when they were
        recorded now.

    Raises
    ------
    InputError
        ``<path>: <what> was made with other settings (differs in: md.n_prod, ...); <hint>``,
        or the record is not valid JSON.
    """
    path = Path(path)
    new = _as_json(settings)
    if path.is_file():
        recorded = read_json(path, hint)
        old = with_defaults(recorded, _as_json(defaults)) if defaults else recorded
        if old != new:
            keys = differing_keys(old, new)
            shown = ", ".join(keys[:_SHOWN_KEYS])
            if len(keys) > _SHOWN_KEYS:
                shown += f" and {len(keys) - _SHOWN_KEYS} more"
            raise InputError(f"{path}: {what} was made with other settings "
                             f"(differs in: {shown}); {hint}")
        if recorded != new:  # equal only through the defaults: record them explicitly
            write_json_atomic(path, new)
        return True
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, new)  # a crash never leaves half a record behind
    return False
