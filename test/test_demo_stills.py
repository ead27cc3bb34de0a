"""The demo's stills keep one layout (attention | each side method) whatever arrived: a side method that fell
behind on a loaded machine keeps its column, which says so, instead of a narrower still."""

from __future__ import annotations

import numpy as np

from act_interp_ros.demo import report
from act_interp_ros.demo.recorder import Recording, StampedFrame


def test_a_side_method_that_fell_behind_keeps_its_column(tmp_path):
    import cv2

    timeline = report.DemoTimeline.build(seed=0, n_episodes=1, n_frames=90, fps=30.0, start_ns=10**9,
                                         image_size=(96, 128))
    rec = Recording()
    for i, t in enumerate(timeline.stamps_ns):
        rgb = np.full((96, 128, 3), 120, np.uint8)
        rec.attention["front"].append(StampedFrame(int(t), rgb, int(t)))
        if i % 10 == 0:
            rec.side["gradient_x_input"]["front"].append(StampedFrame(int(t), rgb, int(t)))
            if i < 10:  # GradCAM stopped after the first tick: later phases have none within 0.5 s
                rec.side["gradcam"]["front"].append(StampedFrame(int(t), rgb, int(t)))
    moments = report.choose_moments(rec, timeline, ["front"], ["gradcam", "gradient_x_input"])
    assert len(moments) >= 2
    late = moments[-1]
    assert late.maps["gradcam"] == {} and set(late.maps["gradient_x_input"]) == {"front"}
    sizes = set()
    for i, m in enumerate(moments):
        path = tmp_path / report.still_name(i, m.phase)
        report.write_still(path, m, timeline, ["front"], proprio=0.2)
        sizes.add(cv2.imread(str(path)).shape)
    assert len(sizes) == 1, sizes  # the same layout with and without GradCAM's overlay
