"""The HTTP plumbing every HTTP adapter shares: connection pool bounds from configuration."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapters.adult_social_care import AdultSocialCareAdapter
from adapters.base import SourceMisconfigured
from adapters.health import HealthAdapter
from adapters.http import HttpSettings, SourceTransport

ASC = {"url": "http://127.0.0.1:9/api/v1", "client_id": "c", "client_secret": "s"}
FHIR = {"url": "http://127.0.0.1:9/fhir"}


def _pool_bounds(adapter: HealthAdapter | AdultSocialCareAdapter) -> tuple[int, int]:
    pool = adapter._http.client._transport._pool  # httpcore's pool: what httpx enforces
    return pool._max_connections, pool._max_keepalive_connections


@pytest.mark.parametrize(
    "make",
    [
        lambda c: HealthAdapter.from_config({**FHIR, **c}),
        lambda c: AdultSocialCareAdapter.from_config({**ASC, **c}),
    ],
    ids=["health", "adult_social_care"],
)
async def test_http_adapters_bound_their_connection_pool(make: Any) -> None:
    default, configured = make({}), make({"max_connections": 4, "max_keepalive": 2})
    try:
        assert _pool_bounds(default) == (20, 10), "not httpx's default of 100 per source"
        assert _pool_bounds(configured) == (4, 2)
    finally:
        await default.aclose()
        await configured.aclose()


def test_keepalive_defaults_to_no_more_than_the_connections() -> None:
    settings = HttpSettings.from_config({**FHIR, "max_connections": 3}, "health")
    assert (settings.max_connections, settings.max_keepalive) == (3, 3)


@pytest.mark.parametrize(
    "limits",
    [
        {"max_connections": 0},
        {"max_connections": "many"},
        {"max_keepalive": -1},
        {"max_connections": 2, "max_keepalive": 5},
    ],
)
def test_connection_limits_out_of_range_are_misconfigured(limits: dict[str, Any]) -> None:
    with pytest.raises(SourceMisconfigured):
        HttpSettings.from_config({**FHIR, **limits}, "health")


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_the_source_transport_speaks_tls_and_verifies_the_certificate(
    tmp_path: Path,
) -> None:
    # Real sources are https: the transport's own network backend does the TLS handshake.
    cert_file, key_file = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b'{"items": [], "next": null}'
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_tls)
    port = server.sockets[0].getsockname()[1]
    url = f"https://127.0.0.1:{port}/api/v1/persons"
    trusting = SourceTransport(httpx.Limits(), ssl.create_default_context(cafile=cert_file))
    default = SourceTransport(httpx.Limits())
    try:
        async with httpx.AsyncClient(transport=trusting) as client:
            response = await client.get(url)
        assert response.status_code == 200 and response.json() == {"items": [], "next": None}
        with pytest.raises(httpx.ConnectError):  # not signed by a CA the system trusts
            async with httpx.AsyncClient(transport=default) as client:
                await client.get(url)
    finally:
        server.close()
        await server.wait_closed()
