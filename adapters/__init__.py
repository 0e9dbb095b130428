"""Source adapters: one module per agency system; `REGISTRY` maps source name to class."""
