"""The live node's runtime, ROS-free: its threads and what they run.

* :mod:`.live_loop`  the control tick on its own thread (snapshot -> prepare -> policy step -> command), the
  pause rule, fault counting; owns the policy and the pipeline;
* :mod:`.live_maps`  the map, side-method and occlusion workers;
* :mod:`.control_window` when a background forward may start (never delaying the control forward);
* :mod:`.side_rate`  ``side_rate_hz: auto`` from the measured forward times;
* :mod:`.async_inference` ``inference: async``: the next chunk on a worker (LeRobot's async semantics);
* :mod:`.sink`       what the loop needs from its host (the ROS node): outputs, the clock, test hooks;
* :mod:`.startup`    torch's thread count and the warm-up;
* :mod:`.worker`     the newest-job worker threads; :mod:`.scheduling` keeps them off real-time policies;
* :mod:`.throttled_log` one line per problem per period.
"""
