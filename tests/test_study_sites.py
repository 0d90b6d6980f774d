"""The study's ``[sites]`` table: which sites a study's hops are counted between.

A vacancy study counts hops between lattice sites only (default ``interstitials =
"none"``): a kinetic Monte Carlo vacancy walk through an alpha-Li3N-like cell (the
one of tests/test_analysis_mechanism_report.py) run through the study's analysis stage
must give vacancy hop classes and a vacancy jump-rate fit, and no interstitial site,
row or fit. Asking for voids in a vacancy study gives interstitial sites; an
interstitial jump-rate fit of Frenkel pairs that come and go is flagged.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from test_analysis_mechanism_report import _vacancy_sweep

from ionmd.errors import InputError
from ionmd.study.analysis_stage import (
    FRENKEL_TRANSIENT,
    analyse,
    flag_transient_interstitials,
    site_options,
    unit_to_cell_frac,
)
from ionmd.study.cell_stage import CellInfo
from ionmd.study.config import load_study_config
from ionmd.study.report_stage import collect_flags, sites_record, study_summary, summary_table

ROOT = Path(__file__).resolve().parents[1]
CIF = ROOT / "inputs" / "structures" / "li3n.cif"

STUDY = f"""
name = "li3n_sites"
{{sites}}
[structure]
file = "{CIF}"
supercell = "3x3x2"
{{defect}}
[species]
mobile = ["Li"]
[model]
pair_style = "zero 4.0"
pair_coeff = ["* *"]
label = "kmc"
[md]
temperatures_K = [500, 650, 800, 1000]
"""


def config(tmp_path: Path, kind: str = "vacancy", sites: str = ""):
    p = tmp_path / f"study_{kind}_{abs(hash(sites))}.toml"
    defect = "" if kind == "none" else f'[defect]\nkind = "{kind}"\nspecies = "Li"'
    p.write_text(STUDY.format(defect=defect, sites=sites))
    return load_study_config(p)


def test_sites_defaults_follow_the_defect_and_are_validated(tmp_path):
    assert config(tmp_path, "vacancy").sites.interstitials == "none"
    assert config(tmp_path, "interstitial").sites.interstitials == "auto"
    assert config(tmp_path, "none").sites.interstitials == "auto"
    cfg = config(tmp_path, "vacancy", '[sites]\ninterstitials = [[0, 0, 0.25]]\nleave_radius_A = 1.1\n'
                 'min_residence_ps = 0')
    assert cfg.sites.interstitials == [[0.0, 0.0, 0.25]] and cfg.sites.voids
    opts = site_options(cfg, SimpleNamespace())
    assert opts.leave_radius_A == 1.1 and opts.min_residence_ps == 0.0 and opts.enter_radius_A is None
    assert opts.interstitial_frac.shape == (18, 3)  # one position x 3x3x2 unit cells
    assert site_options(config(tmp_path, "vacancy"), None).interstitial_frac.shape == (0, 3)
    assert site_options(config(tmp_path, "interstitial"), None).interstitial_frac is None
    for sites, key in (('interstitials = "voids"', "sites.interstitials"),
                       ("interstitials = [[0, 0]]", "sites.interstitials"),
                       ("interstitials = []", "sites.interstitials"),
                       ("leave_radius_A = -1", "sites.leave_radius_A"),
                       ("assign_radius_A = 0.8\nleave_radius_A = 0.5", "sites.leave_radius_A"),
                       ("radius = 1", "radius")):
        with pytest.raises(InputError, match=key):
            config(tmp_path, "vacancy", f"[sites]\n{sites}")
    with pytest.raises(InputError, match="expected a table"):
        config(tmp_path, "vacancy", 'sites = "none"')
    # the sites change only the analysis, which a resume redoes: not part of the identity
    assert "sites" not in cfg.identity()
    assert cfg.identity() == config(tmp_path, "vacancy").identity()


def test_unit_cell_positions_repeat_over_the_data_file_cell(tmp_path):
    """Unit-cell fractions land on the atoms of the written (rotated, tilt-reduced) supercell."""
    from ionmd.driver.structure import make_structure
    from ionmd.lammpsio.datafile import read_data_file

    cfg = config(tmp_path, "vacancy")
    built = make_structure(tmp_path / "perfect.data", source=CIF, supercell="3x3x2")
    ref = read_data_file(built.path)
    frac = np.linalg.solve(ref.cell_A.T, (ref.positions_A - ref.origin_A).T).T % 1.0
    li2 = frac[[s == "Li" for s in ref.symbols]]
    got = unit_to_cell_frac(cfg, None, [[1 / 3, 2 / 3, 0.0], [2 / 3, 1 / 3, 0.0]])
    assert got.shape == (36, 3)
    d = got[:, None, :] - li2[None, :, :]
    d -= np.round(d)
    dist = np.linalg.norm(d @ ref.cell_A, axis=2)
    assert np.all(dist.min(axis=1) < 1e-3)  # every position is a Li(2) site ...
    assert len(set(dist.argmin(axis=1))) == 36  # ... and each Li(2) site is hit once


def _analysed(tmp_path: Path, sites: str):
    sweep_dir = _vacancy_sweep(tmp_path / "sw", temps=(500.0, 650.0, 800.0, 1000.0), n_frames=900)
    cfg = config(tmp_path, "vacancy", "[sites]\nmin_residence_ps = 0\n" + sites)
    cell = CellInfo(cell_data=sweep_dir / "li3n.data", perfect_data=sweep_dir / "li3n.data", n_atoms=53,
                    counts={"Li": 35, "N": 18}, types=["Li", "N"], description="test")
    return cfg, analyse(cfg, SimpleNamespace(sweep_dir=sweep_dir), cell)


def test_vacancy_walk_through_the_study_analysis_has_no_interstitial_rows(tmp_path):
    cfg, analysis = _analysed(tmp_path, "")
    mech = analysis.report["mechanisms"]["kmc"]
    classes = analysis.hop_classes["kmc"]
    assert classes and all(c["from_kind"] == c["to_kind"] == "L" for c in classes), classes
    assert not any(re.search(r"(^|-)i\(", c["label"]) for c in classes)  # no void site i(n)
    labels = {c["label"] for c in classes}
    assert any(lab.startswith("Li(2)-Li(2)") and "in-plane" in lab for lab in labels), labels
    assert any(lab.startswith("Li(1)-Li(2)") for lab in labels), labels
    assert set(mech["defect_jump_arrhenius"]) == {"vacancy"}
    for r in mech["by_T"].values():
        assert r["n_interstitial_sites"] == 0 and r["n_vacancies"] == 1
        assert 0.0 <= r["transit_fraction"] < 0.2
    summary = study_summary(cfg, analysis, {}, [], [], None)
    m = summary["models"]["kmc"]
    assert set(m["defect_jump_arrhenius"]) == {"vacancy"}
    assert set(m["transit_fraction_by_T"]) == set(mech["by_T"])
    assert summary["sites"]["interstitials"] == "none" and summary["sites"]["voids"] is False
    table = "\n".join(summary_table(summary))
    assert "vacancy: " in table and "interstitial" not in table
    assert not flag_transient_interstitials(cfg, analysis.report)


def test_voids_asked_for_in_a_vacancy_study_are_sites(tmp_path):
    cfg, analysis = _analysed(tmp_path, 'interstitials = "auto"')
    for r in analysis.report["mechanisms"]["kmc"]["by_T"].values():
        assert r["n_interstitial_sites"] > 0
        assert r["counts"]["frenkel_formation"] == 0  # no ion of the KMC walk stops in a void


def _report(counts: dict[str, int], n_int: int) -> dict:
    fit = {"Ea_eV": -0.1, "Ea_ci95_eV": [-0.2, 0.0], "flags": ["extrapolation-far"]}
    by_T = {str(T): {"n_interstitial_ions": n_int, "counts": counts, "transit_fraction": 0.1}
            for T in (500.0, 600.0)}
    return {"mechanisms": {"m": {"by_T": by_T, "interstitial_jump_arrhenius": dict(fit),
                                 "defect_jump_arrhenius": {"vacancy": {"Ea_eV": 0.1, "flags": []},
                                                           "interstitial": fit}}}}


def test_interstitial_fit_of_transient_frenkel_pairs_is_flagged(tmp_path):
    vac = config(tmp_path, "vacancy", '[sites]\ninterstitials = "auto"')
    transient = _report({"frenkel_formation": 3, "recombination": 2}, 1)
    assert flag_transient_interstitials(vac, transient) == ["m"]
    mech = transient["mechanisms"]["m"]
    assert FRENKEL_TRANSIENT in mech["defect_jump_arrhenius"]["interstitial"]["flags"]
    assert FRENKEL_TRANSIENT in mech["interstitial_jump_arrhenius"]["flags"]
    assert FRENKEL_TRANSIENT not in mech["defect_jump_arrhenius"]["vacancy"]["flags"]
    assert any(f["flag"] == FRENKEL_TRANSIENT for f in collect_flags(transient, "results"))
    # no ion on an interstitial site at some temperature: also transient
    assert flag_transient_interstitials(vac, _report({"frenkel_formation": 0, "recombination": 0}, 0)) == ["m"]
    # sustained: present at every temperature, never formed nor recombined
    sustained = _report({"frenkel_formation": 0, "recombination": 0}, 1)
    assert flag_transient_interstitials(vac, sustained) == []
    assert FRENKEL_TRANSIENT not in sustained["mechanisms"]["m"]["defect_jump_arrhenius"]["interstitial"]["flags"]
    # an interstitial study's own interstitial is never flagged
    inter = config(tmp_path, "interstitial")
    assert flag_transient_interstitials(inter, _report({"frenkel_formation": 3, "recombination": 2}, 1)) == []


def test_a_site_lattice_file_gives_the_vacant_sites_symmetry_cannot(tmp_path):
    """A reference cell whose Li sublattice has a vacancy and whose symmetry is broken (one N
    replaced by P: P1, no lattice translation, as an ordering of a mixed sublattice is), so the vacancy
    cannot be filled in by symmetry: without ``[sites] lattice`` the analysis sees 53
    lattice sites; with the full lattice file, 54 sites, one vacancy,
    no interstitial, and lattice-lattice vacancy hops."""
    import ase.io
    from ase import Atoms
    from test_analysis_sites import li3n_with_vacancy

    sweep_dir = _vacancy_sweep(tmp_path / "sw", temps=(500.0, 800.0), n_frames=600)
    sc, vac = li3n_with_vacancy()
    n_idx = next(i for i, x in enumerate(sc.get_chemical_symbols()) if x == "N")
    sc.symbols[n_idx] = "P"  # one framework atom of another element: no lattice translation is left,
    sc.positions[n_idx] += [0.37, 0.21, 0.13]  # and off its site: no point symmetry either (P1)
    ase.io.write(tmp_path / "broken.data", sc, format="lammps-data", specorder=["Li", "N", "P"], masses=True)
    full = sc + Atoms("Li", scaled_positions=[vac], cell=sc.cell, pbc=True)
    ase.io.write(tmp_path / "sites.extxyz", full, format="extxyz")
    ase.io.write(tmp_path / "cell.extxyz", sc, format="extxyz")
    body = ('name = "lattice_file"\n[sites]\nmin_residence_ps = 0\nlattice = "sites.extxyz"\n'
            '[structure]\nfile = "cell.extxyz"\n[species]\nmobile = ["Li"]\n[model]\n'
            'pair_style = "zero 4.0"\npair_coeff = ["* *"]\nlabel = "kmc"\n[md]\ntemperatures_K = [500, 800]\n')
    (tmp_path / "s.toml").write_text(body)
    (tmp_path / "plain.toml").write_text(body.replace('lattice = "sites.extxyz"\n', ""))
    cell = CellInfo(cell_data=tmp_path / "broken.data", perfect_data=tmp_path / "broken.data", n_atoms=len(sc),
                    counts={"Li": 53, "N": 17, "P": 1}, types=["Li", "N", "P"], description="test")
    # plain: 53 sites (an ion on the unrecognised vacant site sits in a void part of the time, so
    # the vacancy count depends on T). With the lattice file: 54 sites, 1 vacancy, no interstitial.
    for toml, expected in (("plain.toml", (53,)), ("s.toml", (54, 1, 0))):
        cfg = load_study_config(tmp_path / toml)
        analysis = analyse(cfg, SimpleNamespace(sweep_dir=sweep_dir), cell)
        for r in analysis.report["mechanisms"]["kmc"]["by_T"].values():
            got = (r["n_lattice_sites"], r["n_vacancies"], r["n_interstitial_ions"])
            assert got[:len(expected)] == expected, (toml, got)
    assert cfg.sites.lattice == (tmp_path / "sites.extxyz").resolve()
    labels = {c["label"] for c in analysis.hop_classes["kmc"]}
    assert any(lab.startswith("Li") and "-Li" in lab for lab in labels), labels
    assert sites_record(cfg)["lattice"].endswith("sites.extxyz")
    (tmp_path / "bad.toml").write_text(body.replace('"sites.extxyz"', '"nope.extxyz"'))
    with pytest.raises(InputError, match="sites.lattice.*file not found"):
        load_study_config(tmp_path / "bad.toml")
