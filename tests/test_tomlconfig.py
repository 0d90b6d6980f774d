"""ionmd.tomlconfig: the shared key checks, and the one TOML writer (what it writes, tomllib reads back unchanged)."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from ionmd.errors import InputError
from ionmd.tomlconfig import check_table, dumps, read_toml, toml_key, toml_value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _back(value):
    return tomllib.loads(f"x = {toml_value(value)}")["x"]


@pytest.mark.parametrize("text", [
    'say "hi"', "C:\\dir\\file", "tab\there", "line\nbreak\r\n", "Li₃N Å ü 日本 😀", "\x00\x1f\x7f",
    "", "'single' and \"double\" \\\" mixed",
])
def test_strings_round_trip(text):
    assert _back(text) == text
    assert _back(Path("/a b/c")) == "/a b/c"


@pytest.mark.parametrize("x", [1e-10, -2.5e-300, 700.0, 0.1, 1e16, 123456789.123456789, -0.0, 5e-324])
def test_floats_round_trip_exactly(x):
    back = _back(x)
    assert isinstance(back, float) and back == x and math.copysign(1, back) == math.copysign(1, x)


def test_special_floats_ints_bools_numpy():
    assert _back(float("inf")) == math.inf and _back(-math.inf) == -math.inf and math.isnan(_back(math.nan))
    assert _back(0) == 0 and _back(-(2**63)) == -(2**63) and isinstance(_back(7), int)
    assert _back(True) is True and _back(False) is False
    assert _back(np.int64(3)) == 3 and isinstance(_back(np.int64(3)), int)
    assert _back(np.float64(0.25)) == 0.25 and _back(np.bool_(True)) is True
    assert toml_value(700.0) == "700.0"  # a float stays a float (not 700)


def test_lists_and_inline_tables():
    value = [1, 2.5, "a", [True, []], {"k": 1, "odd key": "v"}, (3, 4)]
    assert _back(value) == [1, 2.5, "a", [True, []], {"k": 1, "odd key": "v"}, [3, 4]]
    assert _back({"pair_style": "eam", "pair_coeff": ["* * Cu_u3.eam"]}) == {
        "pair_style": "eam", "pair_coeff": ["* * Cu_u3.eam"]}


def test_unwritable_values_are_refused():
    for bad in (None, object(), {1, 2}, b"bytes"):
        with pytest.raises(TypeError, match="cannot write"):
            toml_value(bad)


def test_keys_bare_or_quoted():
    assert toml_key("dt_fs") == "dt_fs" and toml_key("models-2") == "models-2"
    assert toml_key("a.b") == '"a.b"' and toml_key("Li 1") == '"Li 1"' and toml_key("") == '""'
    assert tomllib.loads(f"{toml_key('a.b')} = 1") == {"a.b": 1}


def test_dumps_round_trips_nested_tables():
    doc = {
        "name": "x \"quoted\"", "temperatures_K": [700.0, 800.0], "seeds": [1, 2], "tiny": 1e-10,
        "models": {"mace": "/m/model.pt", "eam": {"pair_style": "eam", "pair_coeff": ["* * Cu"]},
                   "with.dot": "p"},
        "md": {"dt_fs": 2.0, "species": ["Cu"], "ok": True},
        "outer": {"inner": {"deep": {"v": 1}}, "empty": {}},
        "empty": {},
    }
    text = dumps(doc)
    assert tomllib.loads(text) == doc
    assert "[md]" in text and "[outer.inner.deep]" in text and "[outer]" not in text
    assert text.index("seeds") < text.index("[models]")  # plain keys before any table


def test_dumps_leaves_out_none_and_writes_the_comment():
    text = dumps({"a": 1, "b": None, "t": {"c": None, "d": "x"}, "only_none": {"z": None}},
                 comment="Written by a test;\n  run by hand")
    assert text.startswith("# Written by a test;\n#   run by hand\n")
    assert tomllib.loads(text) == {"a": 1, "t": {"d": "x"}, "only_none": {}}
    with pytest.raises(TypeError, match="cannot write"):
        dumps({"a": [None]})


def test_check_table_and_read_toml_name_file_and_key(tmp_path):
    assert check_table("c.toml", {"a": 1}, {"a", "b"}, "md") == {"a": 1}
    with pytest.raises(InputError, match=r"^c.toml: key 'md': expected a table, got int$"):
        check_table("c.toml", 5, {"a"}, "md")
    with pytest.raises(InputError, match=r"^c.toml: key 'md.c': unknown key \(allowed: a, b\)$"):
        check_table("c.toml", {"c": 1}, {"b", "a"}, "md")
    bad = tmp_path / "bad.toml"
    bad.write_text("x = [1,\n")
    with pytest.raises(InputError, match=r"bad.toml: not valid TOML: "):
        read_toml(bad, "missing")
    with pytest.raises(InputError, match=r"^no such file$"):
        read_toml(tmp_path / "none.toml", "no such file")
    good = tmp_path / "good.toml"
    good.write_text(dumps({"a": 1, "t": {"b": "x"}}))
    assert read_toml(good, "missing") == {"a": 1, "t": {"b": "x"}}
