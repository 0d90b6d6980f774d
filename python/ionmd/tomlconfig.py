"""TOML configuration files: the shared checks of the readers (sweep, study, learn) and one writer.

Every reader names the file and the dotted key in its errors, in one form:
``<file>: key 'md.temprature': unknown key (allowed: ...)``.
"""

from __future__ import annotations

import numbers
import re
import sys
from collections.abc import Iterable, Mapping
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


def check_table(path: str | Path, table: Any, allowed: Iterable[str], prefix: str) -> dict[str, Any]:
    """Return ``table`` after checking it is a TOML table whose keys are all in ``allowed``.

    Raises :func:`key_error` ``expected a table, got <type>`` for any other value, else as
    :func:`check_keys`.
    """
    if not isinstance(table, dict):
        raise key_error(path, prefix, f"expected a table, got {type(table).__name__}")
    check_keys(path, table, allowed, prefix)
    return table


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


# --------------------------------------------------------------------------- writing

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_string(text: str) -> str:
    """``text`` as a TOML basic string (quotes, backslashes and control characters escaped)."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    """``key`` as a TOML key: bare when it may be (letters, digits, ``_``, ``-``), else quoted."""
    key = str(key)
    return key if _BARE_KEY.match(key) else _toml_string(key)


def toml_value(value: Any) -> str:
    """``value`` as a TOML value.

    Booleans, integers, floats (``inf``/``nan`` included), strings and paths, lists and
    tuples (arrays), and mappings (inline tables). NumPy scalars count as their Python
    kinds. TOML has no null: ``None`` (and any other type) raises :class:`TypeError`.
    """
    if isinstance(value, bool) or (getattr(value, "shape", None) == ()
                                   and getattr(getattr(value, "dtype", None), "kind", "") == "b"):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))  # 1e-10, 700.0, inf, -inf, nan: all valid TOML floats
    if isinstance(value, (str, Path)):
        return _toml_string(str(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) to TOML")


def dumps(mapping: Mapping[str, Any], *, comment: str = "") -> str:
    """The TOML document of ``mapping``: ``tomllib.loads(dumps(m)) == m`` for the types :func:`toml_value` writes.

    Plain keys come first, then each mapping value as a ``[table]`` (nested ones as
    ``[table.sub]``), in insertion order. A key whose value is ``None`` is left out (TOML
    has no null; absent is how our readers spell "not given").

    Parameters
    ----------
    mapping
        The document.
    comment
        Text written first, each line as a ``# `` comment (for example who wrote the file).
    """
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    _write_table(lines, mapping, ())
    return "\n".join(lines).lstrip("\n") + "\n"


def _write_table(lines: list[str], table: Mapping[str, Any], prefix: tuple[str, ...]) -> None:
    subtables = []
    for key, value in table.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            subtables.append((key, value))
        else:
            lines.append(f"{toml_key(key)} = {toml_value(value)}")
    for key, value in subtables:
        name = (*prefix, toml_key(key))
        has_plain = any(v is not None and not isinstance(v, Mapping) for v in value.values())
        if has_plain or not any(isinstance(v, Mapping) for v in value.values()):
            lines += ["", f"[{'.'.join(name)}]"]  # (a table of tables alone needs no header)
        _write_table(lines, value, name)
