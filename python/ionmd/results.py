"""One serialisation base for result dataclasses: ``to_dict``, ``to_json``, ``from_json``.

Non-finite floats are written as JSON ``null`` (valid JSON) and read back as NaN
when the field's default is a float; unknown keys in a file are ignored so that a
newer file still loads with an older reader.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ionmd.errors import InputError

T = TypeVar("T", bound="Result")


def _clean(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if np.isfinite(v) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.ndarray):
        return [_clean(x) for x in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_clean(x) for x in value]
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    return value


class Result:
    """Mixin for ``@dataclass`` results with a stable JSON form.

    Every result carries machine-readable ``flags`` (see :mod:`ionmd.analysis.flags`) when
    its dataclass defines that field.
    """

    def to_dict(self) -> dict:
        """Plain dict of the fields, NaN/inf written as None."""
        return {f.name: _clean(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def to_json(self, path: str | Path | None = None) -> str:
        """Serialise to JSON; also write it to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_dict(cls: type[T], data: dict) -> T:
        """Build the result from :meth:`to_dict` output (None back to NaN for float fields)."""
        kw = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name not in data:
                continue
            v = data[f.name]
            if v is None and isinstance(f.default, float):
                v = float("nan")
            kw[f.name] = v
        return cls(**kw)

    @classmethod
    def from_json(cls: type[T], source: str | Path) -> T:
        """Read a result from a JSON file path or a JSON string."""
        text = str(source)
        p = Path(text) if len(text) < 4096 and not text.lstrip().startswith("{") else None
        if p is not None:
            if not p.is_file():
                raise InputError(f"result file '{p}' does not exist")
            text = p.read_text()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"result JSON{f' {p}' if p else ''} is not valid: line {exc.lineno}: {exc.msg}") from None
        if not isinstance(data, dict):
            raise InputError(f"result JSON{f' {p}' if p else ''} is not an object")
        return cls.from_dict(data)
