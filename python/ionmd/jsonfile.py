"""ionmd's JSON state files: the one reader (errors name the file and the line) and the one atomic writer."""

from __future__ import annotations

import json
import os
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


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write ``data`` as JSON (indented, newline-terminated) to ``path`` through a synced temporary file and a rename.

    A reader never sees half a file, and a crash leaves the old file or the new one.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as handle:
        handle.write(json.dumps(data, indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
