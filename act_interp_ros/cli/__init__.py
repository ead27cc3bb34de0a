"""The command lines: ``act_interp_replay`` (:mod:`.replay`: bags and datasets), ``act_interp_play``
(:mod:`.play`), ``act_interp_demo`` (:mod:`.demo`), ``act_interp_make_bag`` (:mod:`.make_bag`)."""
