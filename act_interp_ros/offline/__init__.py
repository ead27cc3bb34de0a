"""Offline runs (bag replay, dataset replay): tick records, the interpreter that steps the policy and computes
every map, and the outputs (staging, tick table, plot, videos)."""
