"""rosbags-based tools: synthetic bag generator, offline replay and ``act_interp_play``."""
