"""Offline runs (bag replay, dataset replay): tick records, the interpreter that steps the policy and computes
every map, the outputs (staging, tick table, plots, videos) and what both replays share (:mod:`.session`:
options, schedule, per-sequence outputs, Rerun, summaries)."""
