"""Opaque page cursors over a table's seq: `base64("<kind>:<seq>")`, so a cursor from one
list is refused by another."""

from __future__ import annotations

import base64
from dataclasses import dataclass


@dataclass(frozen=True)
class SeqCursor:
    kind: str

    def encode(self, seq: int) -> str:
        return base64.urlsafe_b64encode(f"{self.kind}:{seq}".encode()).decode()

    def decode(self, cursor: str) -> int:
        """The seq, or ValueError("invalid cursor") for anything else."""
        try:
            kind, _, seq = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
            if kind != self.kind:
                raise ValueError
            return int(seq)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError("invalid cursor") from exc
