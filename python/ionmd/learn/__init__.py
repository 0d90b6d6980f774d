"""Active learning: a committee explores in LAMMPS, the labeller is asked only where it is unsure.

One iteration (see ``docs/learn.md``):

1. ``data``: assemble the training set (initial frames plus every label so far);
2. ``train``: train (or warm-start) the committee of K models and export them;
3. ``evaluate``: held-out energy/force RMSE against the labeller;
4. ``explore``: MD through ``pair_style mlip/torch`` with all K models and a
   deviation file, run by the sweep machinery (:mod:`ionmd.driver.sweep`);
5. ``select``: classify frames by max force deviation (accurate < lo <= candidate
   < hi <= failed) and pick up to the budget, spread out;
6. ``label``: label the picked frames (:func:`ionmd.models.label.label_frames`).

Modules: :mod:`.config` (TOML), :mod:`.state` (``learn_state.json``), :mod:`.dataset`,
:mod:`.explore`, :mod:`.select`, :mod:`.train`, :mod:`.loop`,
:mod:`.report`, :mod:`.baseline`, :mod:`.cli`.
"""

STATE_FILE = "learn_state.json"

__all__ = ["STATE_FILE"]
