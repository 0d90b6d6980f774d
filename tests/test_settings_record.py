"""ionmd.settings_record.check_or_record: record once, resume with equal settings, refuse others naming the keys."""

import json
from pathlib import Path

import pytest

from ionmd.errors import InputError
from ionmd.settings_record import check_or_record, differing_keys, with_defaults

SETTINGS = {"name": "cu", "md": {"n_prod": 500, "temperatures_K": (1200.0, 1400.0), "dt_fs": 2.0},
            "model": Path("/m/model.pt"), "seeds": [1, 2]}


def test_records_then_resumes(tmp_path):
    path = tmp_path / "deep" / "record.json"
    assert check_or_record(path, SETTINGS, what="the study", hint="choose another --out") is False
    stored = json.loads(path.read_text())
    assert stored["md"]["temperatures_K"] == [1200.0, 1400.0] and stored["model"] == "/m/model.pt"
    assert not list(path.parent.glob("*.tmp*"))
    # tuples and paths compare as the record stores them: the same settings resume
    assert check_or_record(path, SETTINGS, what="the study", hint="x") is True
    assert check_or_record(path, json.loads(path.read_text()), what="the study", hint="x") is True


def test_other_settings_name_the_dotted_keys(tmp_path):
    path = tmp_path / "record.json"
    check_or_record(path, SETTINGS, what="the study in /out", hint="choose another --out")
    other = SETTINGS | {"md": SETTINGS["md"] | {"n_prod": 600}, "seeds": [1, 2, 3], "extra": True}
    with pytest.raises(InputError) as err:
        check_or_record(path, other, what="the study in /out", hint="choose another --out")
    assert str(err.value) == (f"{path}: the study in /out was made with other settings "
                              "(differs in: extra, md.n_prod, seeds); choose another --out")
    # a key that went missing is named too
    less = {k: v for k, v in SETTINGS.items() if k != "model"}
    with pytest.raises(InputError, match=r"\(differs in: model\); hint$"):
        check_or_record(path, less, what="x", hint="hint")


def test_many_differences_are_cut_short(tmp_path):
    path = tmp_path / "r.json"
    check_or_record(path, {f"k{i:02d}": i for i in range(12)}, what="this fit", hint="h")
    with pytest.raises(InputError, match=r"differs in: k00, k01, .*, k07 and 4 more\); h"):
        check_or_record(path, {f"k{i:02d}": -i - 1 for i in range(12)}, what="this fit", hint="h")


def test_bad_record_names_the_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match=r"r.json' is not valid JSON: line 1: .*; remove it"):
        check_or_record(path, SETTINGS, what="x", hint="remove it")


def test_differing_keys():
    assert differing_keys({"a": {"b": 1, "c": [1, 2]}}, {"a": {"b": 1, "c": [1, 3]}}) == ["a.c"]
    assert differing_keys({"a": {"b": 1}}, {"a": 5}) == ["a"]
    assert differing_keys({"a": 1}, {"a": 1}) == []
    assert differing_keys([1], [2]) == ["(the whole record)"]


# A study recorded before a defaulted key existed (the record lacks "md.thermostat" and
# the whole "sites" table) against settings that now carry them.
OLD_RECORD = {"name": "cu", "md": {"n_prod": 500, "dt_fs": 2.0}}
DEFAULTS = {"md": {"thermostat": "nose-hoover", "dt_fs": 1.0}, "sites": {"interstitials": "none"}}
NOW = {"name": "cu", "md": {"n_prod": 500, "dt_fs": 2.0, "thermostat": "nose-hoover"},
       "sites": {"interstitials": "none"}}


def test_a_new_key_left_at_its_default_resumes_an_older_record(tmp_path):
    path = tmp_path / "record.json"
    path.write_text(json.dumps(OLD_RECORD))
    with pytest.raises(InputError, match=r"differs in: md.thermostat, sites"):  # without defaults
        check_or_record(path, NOW, what="the study", hint="x")
    assert check_or_record(path, NOW, what="the study", hint="x", defaults=DEFAULTS) is True
    assert json.loads(path.read_text()) == NOW  # the record now holds the keys explicitly
    assert check_or_record(path, NOW, what="the study", hint="x") is True


@pytest.mark.parametrize("changed, key", [
    ({"md": NOW["md"] | {"thermostat": "langevin"}}, "md.thermostat"),
    ({"sites": {"interstitials": "auto"}}, "sites.interstitials"),
    ({"md": NOW["md"] | {"dt_fs": 1.0}}, "md.dt_fs"),  # recorded 2.0: its default does not apply
])
def test_a_new_key_set_to_another_value_is_still_refused(tmp_path, changed, key):
    path = tmp_path / "record.json"
    path.write_text(json.dumps(OLD_RECORD))
    with pytest.raises(InputError, match=rf"\(differs in: {key}\)"):
        check_or_record(path, NOW | changed, what="the study", hint="x", defaults=DEFAULTS)
    assert json.loads(path.read_text()) == OLD_RECORD  # a refusal leaves the record alone


def test_with_defaults_fills_only_missing_keys():
    assert with_defaults(OLD_RECORD, DEFAULTS) == NOW
    assert with_defaults({"md": 3}, DEFAULTS) == {"md": 3, "sites": {"interstitials": "none"}}
    assert OLD_RECORD == {"name": "cu", "md": {"n_prod": 500, "dt_fs": 2.0}}  # not modified
    # defaults for a list of tables (the study's models) apply to each table in it
    models = {"models": [{"name": "a"}, {"name": "b", "pair_repulsion": True}]}
    assert with_defaults(models, {"models": {"pair_repulsion": False}}) == {
        "models": [{"name": "a", "pair_repulsion": False}, {"name": "b", "pair_repulsion": True}]}
