"""``--regions FILE``: named boxes per camera (fixed, or per frame) and what each map and an ablation say about them.

The file (JSON or YAML)::

    regions:
      - name: shadow            # letters, digits, _ (a column name part)
        camera: front
        box: [212, 140, 48, 40] # x, y, w, h in source pixels, on every tick
      - name: cube
        camera: front
        boxes:                  # per frame: tick index -> box; a tick uses the latest key <= its index
          0: [100, 80, 20, 20]
          30: [110, 82, 20, 20]

Per tick and region (:func:`region_values`), for each map computed on the tick (attention on every tick, the
side methods on side ticks), with the map brought to the policy's image size (token maps bilinearly, as the
overlays are drawn) and clipped at 0:

* ``mass``: the map's share inside the box;
* ``density``: the map's mean inside the box, the map scaled to its peak (0..1: how strong it is there);
* ``lift``: mass / the box's share of the image (1 = what a uniform map gives; a criterion that a uniform map
  passes says nothing, docs/map_criteria.md);

and ``ablation``: the executed chunk's change when the box is filled with the dataset's mean colour (normalised
L2, as ``--ablate``: the causal effect of the region).
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from act_interp_ros.core.ablation import box_mask
from act_interp_ros.core.faithfulness import to_pixels

__all__ = ["Region", "RegionSet", "region_columns", "region_values"]

_CAMERA_PREFIX = "observation.images."
_NAME = re.compile(r"^[A-Za-z0-9_]+$")
#: Per map and region.
MAP_FIELDS = ("mass", "density", "lift")


@dataclass(frozen=True)
class Region:
    """One named box of one camera: ``boxes`` maps the first tick index it applies from to (x, y, w, h)."""

    name: str
    camera: str
    boxes: tuple[tuple[int, tuple[int, int, int, int]], ...]

    def box_at(self, tick: int) -> tuple[int, int, int, int] | None:
        """The box on tick ``tick`` (the latest key <= tick), ``None`` before the first key."""
        keys = [k for k, _ in self.boxes]
        i = bisect_right(keys, tick) - 1
        return self.boxes[i][1] if i >= 0 else None


@dataclass(frozen=True)
class RegionSet:
    """The regions of a ``--regions`` file, in file order."""

    regions: tuple[Region, ...]
    source: str = ""

    @classmethod
    def load(cls, path: str | Path) -> RegionSet:
        """Read and check a regions file; ValueError with one line naming what is wrong."""
        p = Path(path)
        where = f"--regions '{p}'"
        try:
            text = p.read_text()
        except OSError as exc:
            raise ValueError(f"{where}: cannot read it ({exc.strerror or exc})") from None
        try:
            data = json.loads(text) if p.suffix.lower() == ".json" else _yaml(text)
        except ValueError as exc:
            raise ValueError(f"{where}: not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'} "
                             f"({str(exc).splitlines()[0]})") from None
        return cls.from_data(data, where, str(p))

    @classmethod
    def from_data(cls, data: Any, where: str = "--regions", source: str = "") -> RegionSet:
        items = data.get("regions") if isinstance(data, dict) else None
        if not isinstance(items, list) or not items:
            raise ValueError(f"{where}: expected a mapping with a non-empty list 'regions' of "
                             "{name, camera, box: [x, y, w, h]} or {name, camera, boxes: {tick: [x, y, w, h]}}")
        out, names = [], set()
        for k, item in enumerate(items):
            at = f"{where}: region {k + 1}"
            if not isinstance(item, dict):
                raise ValueError(f"{at}: expected a mapping with name, camera and box or boxes")
            name, camera = item.get("name"), item.get("camera")
            if not isinstance(name, str) or not _NAME.match(name):
                raise ValueError(f"{at}: 'name' must be letters, digits or _ (it names columns), got {name!r}")
            if name in names:
                raise ValueError(f"{at}: the name '{name}' is used twice")
            names.add(name)
            if not isinstance(camera, str) or not camera.strip():
                raise ValueError(f"{at} ('{name}'): 'camera' must name one of the policy's cameras, got {camera!r}")
            if ("box" in item) == ("boxes" in item):
                raise ValueError(f"{at} ('{name}'): give exactly one of 'box' (fixed) and 'boxes' (per frame)")
            raw = {0: item["box"]} if "box" in item else item["boxes"]
            if not isinstance(raw, dict) or not raw:
                raise ValueError(f"{at} ('{name}'): 'boxes' must map tick indices to [x, y, w, h]")
            boxes = []
            for key, box in raw.items():
                try:
                    tick = int(key)
                except (TypeError, ValueError):
                    raise ValueError(f"{at} ('{name}'): tick index {key!r} is not an integer") from None
                boxes.append((tick, _box(box, f"{at} ('{name}')")))
            cam = camera.strip()
            out.append(Region(name, cam if cam.startswith(_CAMERA_PREFIX) else _CAMERA_PREFIX + cam,
                              tuple(sorted(boxes))))
        return cls(tuple(out), source)

    @property
    def cameras(self) -> set[str]:
        return {r.camera for r in self.regions}


def _yaml(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None


def _box(box: Any, at: str) -> tuple[int, int, int, int]:
    ok = isinstance(box, (list, tuple)) and len(box) == 4 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                   for v in box)
    if not ok or box[0] < 0 or box[1] < 0 or box[2] < 1 or box[3] < 1:
        raise ValueError(f"{at}: a box is 4 integers [x, y, w, h], x, y >= 0 and w, h >= 1, got {box!r}")
    return tuple(box)  # type: ignore[return-value]


def region_columns(regions: RegionSet, maps: list[str]) -> list[str]:
    """The per-tick table's region columns: ``region_<name>_<map>_<mass|density|lift>``, ``region_<name>_ablation``."""
    cols = []
    for r in regions.regions:
        cols += [f"region_{r.name}_{m}_{f}" for m in maps for f in MAP_FIELDS] + [f"region_{r.name}_ablation"]
    return cols


def map_region_values(saliency: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """mass, density, lift of one map (token grid or pixels) in one (H, W) bool mask at the policy's size."""
    m = np.clip(to_pixels(saliency, mask.shape), 0.0, None)
    total, peak = float(m.sum()), float(m.max())
    area = float(mask.mean())
    if total <= 0 or area <= 0:
        return {"mass": float("nan"), "density": float("nan"), "lift": float("nan")}
    mass = float(m[mask].sum()) / total
    return {"mass": mass, "density": float(m[mask].mean()) / peak, "lift": mass / area}


def region_values(regions: RegionSet, tick: int, maps: dict[str, dict[str, np.ndarray]],
                  source_hw: dict[str, tuple[int, int]], policy_hw: dict[str, tuple[int, int]]
                  ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """(per-region map columns of one tick, {region name: mask at the policy's size} for the ablation).

    Args:
        maps: map name -> camera key -> map, the maps computed on this tick.
        source_hw / policy_hw: camera key -> (H, W) of the tick's source frame / of the policy's input.
    """
    values: dict[str, float] = {}
    masks: dict[str, np.ndarray] = {}
    for r in regions.regions:
        box = r.box_at(tick)
        if box is None or r.camera not in source_hw:
            continue
        try:
            mask = box_mask(box, source_hw[r.camera], policy_hw[r.camera])
        except ValueError:
            continue  # a box outside this frame: no values on this tick
        masks[r.name] = mask
        for name, per_cam in maps.items():
            if r.camera in per_cam:
                for f, v in map_region_values(per_cam[r.camera], mask).items():
                    values[f"region_{r.name}_{name}_{f}"] = v
    return values, masks
