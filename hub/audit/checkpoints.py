"""Signed checkpoints of the audit chain, kept as files outside the database.

The sequencer appends one JSON line per checkpoint to `audit-<log id>.jsonl` in the
checkpoint folder, signed with an Ed25519 key that lives in a file (never in the database);
the purge job appends its signed purge records to `audit-<log id>.purges.jsonl`. A database
superuser who rewrites rows and recomputes the chain cannot re-sign these.

A checkpoint line: `log_id`, `prev_seq`/`prev_head` (the previous checkpoint: lines form a
chain themselves, so a dropped line shows), `last_seq`, `head` (chain hash at last_seq),
`count` (entries up to last_seq), `time`, `seqs` (the sequenced seqs as [first, last] runs),
`leaves` (first 4 bytes of each entry digest, base64: they let verify name the exact event a
recomputed chain changed), `key_id`, `sig` (Ed25519 over the RFC 8785 bytes of the rest).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .chain import canonical

LEAF_BYTES = 4


def public_key_path(key_file: Path) -> Path:
    return key_file.with_name(key_file.name + ".pub")


def load_or_create_key(key_file: Path) -> Ed25519PrivateKey:
    """The signing key; made on first use (0600), safe against a second process racing."""
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = key_file.with_name(f".{key_file.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, key_file)  # atomic: fails if another process made one first
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    loaded = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError("the audit signing key is not an Ed25519 key")
    key = loaded
    pub = public_key_path(key_file)
    if not pub.exists():
        pub.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return key


def load_public_key(key_file: Path) -> Ed25519PublicKey:
    """The verifying key: the `.pub` file beside the key file, else derived from the key."""
    pub = public_key_path(key_file)
    if pub.exists():
        key = serialization.load_pem_public_key(pub.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the audit public key is not an Ed25519 key")
        return key
    private = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError("the audit signing key is not an Ed25519 key")
    return private.public_key()


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(record: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    body = {**record, "key_id": key_id(key.public_key())}
    return {**body, "sig": base64.b64encode(key.sign(canonical(body))).decode()}


def signature_ok(record: dict[str, Any], public: Ed25519PublicKey) -> bool:
    body = {k: v for k, v in record.items() if k != "sig"}
    try:
        public.verify(base64.b64decode(str(record.get("sig", ""))), canonical(body))
    except (InvalidSignature, ValueError):
        return False
    return True


def checkpoint_file(directory: Path, log_id: str) -> Path:
    return directory / f"audit-{log_id}.jsonl"


def purge_file(directory: Path, log_id: str) -> Path:
    return directory / f"audit-{log_id}.purges.jsonl"


def append(path: Path, record: dict[str, Any]) -> None:
    """Append one line durably (one write on an O_APPEND descriptor, then fsync)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # a line torn by a crash stays a line of its own
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(line number, record) for every line; None for a line that is not a JSON object
    (e.g. torn by a crash mid-write)."""
    if not path.exists():
        return
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                record = json.loads(raw)
            except ValueError:
                yield number, None
                continue
            yield number, record if isinstance(record, dict) else None


def last_record(path: Path) -> dict[str, Any] | None:
    """The last complete line of the file (read from the end: files grow long)."""
    if not path.exists():
        return None
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        end = f.tell()
        block, data = 65536, b""
        while end > 0:
            start = max(0, end - block)
            f.seek(start)
            data = f.read(end - start) + data
            end = start
            lines = data.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or start == 0:
                for raw in reversed(lines):
                    try:
                        record = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(record, dict):
                        return record
                if start == 0:
                    return None
    return None


def seq_runs(seqs: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for s in seqs:
        if runs and runs[-1][1] == s - 1:
            runs[-1][1] = s
        else:
            runs.append([s, s])
    return runs


def runs_to_seqs(runs: list[list[int]]) -> list[int]:
    return [s for first, last in runs for s in range(first, last + 1)]


def leaves(digests: list[bytes]) -> str:
    return base64.b64encode(b"".join(d[:LEAF_BYTES] for d in digests)).decode()


def split_leaves(text: str) -> list[bytes]:
    raw = base64.b64decode(text)
    return [raw[i : i + LEAF_BYTES] for i in range(0, len(raw), LEAF_BYTES)]


@dataclass(frozen=True)
class CheckpointState:
    """Where the last checkpoint left the chain."""

    seq: int
    head: str
    count: int

    @classmethod
    def of(cls, record: dict[str, Any] | None) -> CheckpointState | None:
        if record is None:
            return None
        return cls(int(record["last_seq"]), str(record["head"]), int(record["count"]))
