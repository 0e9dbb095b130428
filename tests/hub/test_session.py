"""Browser sessions (hub.auth.session): short-lived, renewed, capped, bound to the hub's key and
to the issuers people may sign in through; sealed sign-in state expires."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hub.auth.session import Sessions
from hub.auth.tokens import Actor, AuthError

IDP = "https://idp.council.example"
ACTOR = Actor("sw-1", IDP, frozenset({"mash_social_worker"}), "council", "mash-team", "hub")


def sessions(tmp_path: Path, clock: float | None = None, key: str = "key.jwk.json") -> Sessions:
    now = time.time() if clock is None else clock
    return Sessions(
        tmp_path / key, idle_s=900, max_s=8 * 3600, issuers=frozenset({IDP}), clock=lambda: now
    )


async def test_a_session_reads_back_as_the_actor_who_signed_in_with_their_issuer(
    tmp_path: Path,
) -> None:
    store = sessions(tmp_path)
    read = await store.read(store.mint(ACTOR))
    assert read.actor == ACTOR and len(read.csrf) >= 32


async def test_a_session_lapses_after_the_idle_time_and_at_the_maximum_since_sign_in(
    tmp_path: Path,
) -> None:
    idle = sessions(tmp_path, clock=time.time() - 901)  # minted 15 minutes and a second ago
    with pytest.raises(AuthError):
        await idle.read(idle.mint(ACTOR))
    now = sessions(tmp_path)
    renewed_late = now.mint(ACTOR, started=int(time.time()) - 8 * 3600 + 10)
    assert (await now.read(renewed_late)).actor == ACTOR  # renewed: still inside the 8 hours
    too_old = now.mint(ACTOR, started=int(time.time()) - 8 * 3600 - 1)
    with pytest.raises(AuthError):
        await now.read(too_old)


async def test_a_session_signed_by_another_key_or_naming_an_untrusted_issuer_is_refused(
    tmp_path: Path,
) -> None:
    ours, theirs = sessions(tmp_path), sessions(tmp_path, key="other.jwk.json")
    with pytest.raises(AuthError):
        await ours.read(theirs.mint(ACTOR))
    with pytest.raises(AuthError):
        ours.mint(Actor("x", "https://evil.example", frozenset(), None, None, None))


def test_sealed_sign_in_state_expires_and_cannot_be_forged(tmp_path: Path) -> None:
    store = sessions(tmp_path)
    sealed = store.seal({"state": "s"}, 600)
    assert store.unseal(sealed) == {"state": "s"}
    assert sessions(tmp_path, clock=time.time() - 601).seal({"state": "s"}, 600) != sealed
    assert store.unseal(sessions(tmp_path, clock=time.time() - 601).seal({"s": 1}, 600)) is None
    assert store.unseal(sessions(tmp_path, key="other.jwk.json").seal({"s": 1}, 600)) is None
    assert store.unseal(store.mint(ACTOR)) is None  # a session is not sealed state
    assert store.unseal("not-a-token") is None


def test_the_signing_key_is_private_to_the_hub(tmp_path: Path) -> None:
    sessions(tmp_path)
    assert (tmp_path / "key.jwk.json").stat().st_mode & 0o077 == 0
