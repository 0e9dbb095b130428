"""The audit log: one event per operation written before the response, the hash chain over the
events, its signed checkpoints, verification and retention."""
