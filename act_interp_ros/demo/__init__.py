"""The README demo and the known-answer model behind it (see :mod:`act_interp_ros.demo.known_answer`)."""
