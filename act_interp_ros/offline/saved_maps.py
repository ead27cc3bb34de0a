"""``--save-maps``: the raw maps of every tick of a sequence, for users' own analysis (``maps.npz``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from act_interp_ros.offline.records import TickRecord
from act_interp_ros.settings import camera_name

__all__ = ["SavedMaps"]


class SavedMaps:
    """``--save-maps``: every map of every tick, written to ``maps.npz`` (float16, compressed).

    Arrays: ``tick`` (T,) the tick index of every processed tick; per map and camera (short name)
    ``<map>_<camera>`` (N, h, w) and ``<map>_<camera>_tick`` (N,) the ticks it was computed on (attention: every
    processed tick, the side methods: side ticks). Token maps are at the token grid, pixel maps at the policy's
    image size, as the overlays take them.
    """

    def __init__(self) -> None:
        self.ticks: list[int] = []
        self.maps: dict[str, list[np.ndarray]] = {}
        self.map_ticks: dict[str, list[int]] = {}

    def add(self, rec: TickRecord) -> None:
        if rec.skipped or rec.interpretation is None:
            return
        self.ticks.append(rec.index)
        for method, per_cam in {"attention": rec.interpretation.camera_maps, **rec.side_maps}.items():
            for key, m in per_cam.items():
                name = f"{method}_{camera_name(key)}"
                self.maps.setdefault(name, []).append(np.asarray(m, dtype=np.float16))
                self.map_ticks.setdefault(name, []).append(rec.index)

    def write(self, path: Path) -> None:
        arrays = {"tick": np.asarray(self.ticks, dtype=np.int64)}
        for name, maps in self.maps.items():
            arrays[name] = np.stack(maps)
            arrays[f"{name}_tick"] = np.asarray(self.map_ticks[name], dtype=np.int64)
        np.savez_compressed(path, **arrays)
