"""The README demo (``act_interp_demo``): the live node on a known-answer model (:mod:`act_interp_ros.proofs`), end to end."""
