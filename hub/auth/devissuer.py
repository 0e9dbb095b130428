"""The local development token issuer.

It exists so that the demo (and dev mode) can be tried without a real identity provider: an
EC P-256 key pair kept in the data folder signs ES256 tokens for the demo roles
(``mash-hub token --role ROLE``). The hub trusts it ONLY when the demo or dev mode adds
:func:`issuer_config` to its trusted issuers; nothing else turns it on.

Files, under ``<data_dir>/dev-issuer/``:

- ``private.jwk.json`` — the signing key (private, mode 0600);
- ``jwks.json`` — the public JWKS the hub verifies against.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, generate_key, import_key

from adapters import declarations

from .tokens import IssuerConfig

__all__ = [
    "DEFAULT_TEAM",
    "DEV_AUDIENCE",
    "DEV_CLIENT",
    "DEV_ISSUER",
    "ROLES",
    "ROLE_AGENCY",
    "ensure_keys",
    "issuer_config",
    "mint",
    "mint_machine",
]

DEV_ISSUER = "https://dev-issuer.mash-hub.invalid"
DEV_AUDIENCE = "mash-hub"
DEV_CLIENT = "mash-hub-demo"
DEFAULT_TEAM = "mash-team"

#: The default agency of each demo role: the council's and a partner system's, and each
#: declared source's practitioners with the source's agency (adapters.declarations()).
ROLE_AGENCY: dict[str, str] = {
    "mash_social_worker": "council",
    "mash_manager": "council",
    **{role: d.agency for d in declarations() for role in d.roles},
    "ig_officer": "council",
    "partner_system": "partner",
}
ROLES: frozenset[str] = frozenset(ROLE_AGENCY)

_DIR = "dev-issuer"
_PRIVATE = "private.jwk.json"
_JWKS = "jwks.json"
_ALG = "ES256"


def _paths(data_dir: Path) -> tuple[Path, Path, Path]:
    folder = Path(data_dir) / _DIR
    return folder, folder / _PRIVATE, folder / _JWKS


def _write_new_private_key(path: Path) -> None:
    """Write a fresh key to ``path`` unless one is already there (safe against races)."""
    key = generate_key("EC", "P-256", parameters={"alg": _ALG, "use": "sig"}, auto_kid=True)
    data = json.dumps(key.as_dict(private=True), indent=2).encode()
    fd, tmp = tempfile.mkstemp(prefix=".private-", dir=path.parent)  # created with mode 0600
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # atomic and never overwrites a key another process made first
        except FileExistsError:
            pass
        except OSError:  # no hard links on this file system: exclusive create instead
            try:
                out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return
            with os.fdopen(out, "wb") as handle:
                handle.write(data)
    finally:
        os.unlink(tmp)


def _load_private_key(private_path: Path) -> ECKey:
    key = import_key(json.loads(private_path.read_text()), "EC")
    if not key.is_private or key.curve_name != "P-256" or not key.kid:
        raise ValueError(f"{private_path} is not an EC P-256 private key with a kid")
    return key


def _public_jwks(key: ECKey) -> dict[str, object]:
    return {"keys": [key.as_dict(private=False)]}


def ensure_keys(data_dir: Path) -> Path:
    """Create the dev issuer's key pair under ``data_dir`` if missing; return the JWKS path."""
    folder, private_path, jwks_path = _paths(data_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not private_path.exists():
        _write_new_private_key(private_path)
    key = _load_private_key(private_path)
    expected = _public_jwks(key)
    current = None
    if jwks_path.exists():
        try:
            current = json.loads(jwks_path.read_text())
        except (OSError, ValueError):
            current = None
    if current != expected:
        fd, tmp = tempfile.mkstemp(prefix=".jwks-", dir=folder)
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "w") as handle:
                json.dump(expected, handle, indent=2)
            os.replace(tmp, jwks_path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    return jwks_path


def issuer_config(data_dir: Path) -> IssuerConfig:
    """The `IssuerConfig` under which the hub trusts the dev issuer (keys made if needed)."""
    return IssuerConfig(
        issuer=DEV_ISSUER,
        audience=DEV_AUDIENCE,
        jwks_file=str(ensure_keys(data_dir)),
        algorithms=(_ALG,),
    )


def mint(
    data_dir: Path,
    role: str,
    agency: str | None = None,
    sub: str | None = None,
    team: str | None = None,
    ttl_s: int = 8 * 3600,
    now: int | None = None,
    client: str = DEV_CLIENT,
) -> str:
    """Mint an ES256 token from the dev issuer for a demo user in ``role``. ``client`` is
    the `azp` claim: the system the user works through (a partner system behind a gateway
    names itself there, and the audit event records it)."""
    if role not in ROLE_AGENCY:
        raise ValueError(f"unknown role {role!r}; allowed roles: {', '.join(sorted(ROLES))}")
    claims = {
        "sub": sub or f"demo-{role}",
        "roles": [role],
        "agency": agency or ROLE_AGENCY[role],
        "team": team or DEFAULT_TEAM,
        "azp": client,
    }
    return _sign(data_dir, claims, ttl_s, now)


def mint_machine(data_dir: Path, client: str, ttl_s: int = 8 * 3600, now: int | None = None) -> str:
    """Mint a client-credentials token for ``client``: no person behind it, so its ``sub``
    is the client id (RFC 9068) and it claims no role, agency or team. A partner system's
    own token (rule 17), or a federation router's (hub/partners/routers.py)."""
    if not client:
        raise ValueError("a machine token needs a client id")
    claims = {
        "sub": client,
        "azp": client,
        "client_id": client,
        "gty": "client-credentials",
    }
    return _sign(data_dir, claims, ttl_s, now)


def _sign(data_dir: Path, claims: dict[str, Any], ttl_s: int, now: int | None) -> str:
    """`claims` signed by the dev issuer's key, with its issuer, audience and lifetime."""
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    ensure_keys(data_dir)
    key = _load_private_key(_paths(data_dir)[1])
    issued = int(time.time()) if now is None else int(now)
    timing = {"iat": issued, "nbf": issued, "exp": issued + int(ttl_s)}
    payload = {"iss": DEV_ISSUER, "aud": DEV_AUDIENCE, **claims, **timing}
    return jwt.encode({"alg": _ALG, "kid": key.kid}, payload, key, algorithms=[_ALG])
