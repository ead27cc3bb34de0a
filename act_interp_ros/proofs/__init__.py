"""The trained proof models and their evaluations: models whose right answer is known, so the maps can be judged.

* known answer (:mod:`.known_answer`, :mod:`.training`, :mod:`.model_cache`): a small ACT trained on the synthetic
  SO-101 pick; which cube it uses is proven by intervention (:mod:`.intervention`) and the maps are scored against
  it (:mod:`.map_evaluation`, :mod:`.map_scores`, :mod:`.map_baselines`, :mod:`.map_criteria`);
* coordinates (:mod:`.env_state_model`, :mod:`.coordinate_use`): an env-state ACT that acts on its coordinates;
* the shadow-test pair (:mod:`.shortcut_model`, :mod:`.shortcut_evaluation`, :mod:`.shortcut_recording`,
  :mod:`.pair_spread`): two ACTs, one of which succeeds for the wrong reason.

Every model is trained with LeRobot's own policy, processors and optimiser, cached per machine and keyed by the
source files that decide its weights. Used by the demo, the tests and the benchmarks; a robot user needs none of it.
"""
