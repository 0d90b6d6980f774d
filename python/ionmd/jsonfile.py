"""The one reader of ionmd's JSON state files, with an error that names the file and the line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ionmd.errors import InputError


def read_json(path: str | Path, hint: str = "") -> Any:
    """Parse the JSON file ``path``.

    Parameters
    ----------
    path
        The file.
    hint
        What the user can do about a bad file; appended to the message after ``; ``.

    Raises
    ------
    InputError
        ``'<path>' is not valid JSON: line N: <reason>`` or ``'<path>' cannot be read: <reason>``.
    """
    suffix = f"; {hint}" if hint else ""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"'{path}' is not valid JSON: line {exc.lineno}: {exc.msg}{suffix}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"'{path}' cannot be read: {exc}{suffix}") from None
