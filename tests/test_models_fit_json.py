"""fit.json is written atomically: a failed write leaves the previous record whole."""

from __future__ import annotations

import json
import os

import pytest

from ionmd.models.fit import FitResult, MemberResult


def _result(out_dir: str, wall_s: float) -> FitResult:
    member = MemberResult(**{f: 0 for f in MemberResult.__dataclass_fields__})
    return FitResult("mace", "data.xyz", out_dir, "small", 8, 1, 1, ["A", "B"], {"A": -1.5, "B": -2.0},
                     "isolated atoms", 3.2, 41.0, wall_s, [member])


def test_save_json_round_trips_and_leaves_no_temporary(tmp_path):
    result = _result(str(tmp_path), 12.5)
    result.save_json(tmp_path / "fit.json")
    assert json.loads((tmp_path / "fit.json").read_text()) == json.loads(result.to_json())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.json"]


def test_a_failed_save_keeps_the_old_fit_json(tmp_path, monkeypatch):
    path = tmp_path / "fit.json"
    _result(str(tmp_path), 1.0).save_json(path)
    before = path.read_text()

    def broken_replace(src, dst):
        raise OSError("disk went away")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk went away"):
        _result(str(tmp_path), 2.0).save_json(path)
    assert path.read_text() == before  # never half a file, never the new one in place
