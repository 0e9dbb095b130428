"""The policy engine: the one door to the information-sharing rules in `policies/`."""
