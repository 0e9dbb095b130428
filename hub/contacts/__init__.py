"""MASH contacts: the front door's workflow and the figures councils report about it."""
