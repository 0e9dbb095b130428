"""Partner systems: the gate their requests pass, rate limits, trusted documents, trusted
routers and the supergraph."""
