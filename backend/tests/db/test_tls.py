"""TLS as the URL asks for it, against the real server (or PgBouncer) of this run.

The server of `make test-tls` and `make test-pgbouncer` speaks TLS with Debian's
self-signed snakeoil certificate; the plain server of `make test` does not, and
there every mode that requires TLS must fail rather than fall back to plain.
"""

import asyncio
import socket
import ssl
import struct
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.conftest import DatabaseUrls
from tests.environment import only_on
from todo.config import Settings
from todo.db import Database
from todo.main import create_app

pytestmark = only_on("postgresql")

_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def fetch_server_certificate(host: str, port: int) -> bytes | None:
    """The server's certificate (DER), or None when it does not speak TLS."""
    with socket.create_connection((host, port), timeout=5) as raw:
        raw.sendall(_SSL_REQUEST)
        if raw.recv(1) != b"S":
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(raw) as tls:
            return tls.getpeercert(binary_form=True)


@pytest.fixture
async def server_certificate(database_urls: DatabaseUrls, tmp_path: Path) -> Path | None:
    """The server's own certificate as a PEM file (it is self-signed), if it has one."""
    url = make_url(database_urls.app)
    der = await asyncio.to_thread(fetch_server_certificate, url.host or "", url.port or 5432)
    if der is None:
        return None
    path = tmp_path / "server.pem"
    path.write_text(ssl.DER_cert_to_PEM_cert(der))
    return path


def another_authority() -> Path:
    """A root certificate file that did not sign the server's certificate."""
    return Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")


def certificate_name(path: Path) -> str:
    subject = subprocess.run(
        ["openssl", "x509", "-in", str(path), "-noout", "-subject", "-nameopt", "RFC2253"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return subject.strip().removeprefix("subject=").removeprefix("CN=").split(",")[0]


def with_tls(database_urls: DatabaseUrls, host: str | None = None, **params: str) -> str:
    url = make_url(database_urls.app)
    query = {name: value for name, value in url.query.items() if not name.startswith("ssl")}
    query.pop("channel_binding", None)
    url = url.set(query={**query, **params})
    if host is not None:
        url = url.set(host=host)
    return url.render_as_string(hide_password=False)


async def readiness(url: str) -> tuple[int, bool | None]:
    """The readiness status through `url`, and whether the server link is encrypted."""
    settings = Settings(database_url=url, database_connect_timeout=2)
    database = Database(url, settings)
    try:
        transport = httpx.ASGITransport(app=create_app(settings, database=database))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            status = (await client.get("/health/ready")).status_code
        encrypted = None
        if status == 200:
            # On the pool's own connection: the one the service's statements use.
            rows = await database.fetch(
                text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            )
            encrypted = rows[0][0]
        return status, encrypted
    finally:
        await database.dispose()


async def test_sslmode_require_encrypts_or_refuses_to_connect(
    database_urls: DatabaseUrls, server_certificate: Path | None
) -> None:
    status, encrypted = await readiness(with_tls(database_urls, sslmode="require"))

    if server_certificate is None:
        assert status == 503
    else:
        assert (status, encrypted) == (200, True)


async def test_verify_ca_accepts_the_servers_own_authority(
    database_urls: DatabaseUrls, server_certificate: Path | None
) -> None:
    root = server_certificate or another_authority()
    status, encrypted = await readiness(
        with_tls(database_urls, sslmode="verify-ca", sslrootcert=str(root))
    )

    if server_certificate is None:
        assert status == 503
    else:
        assert (status, encrypted) == (200, True)


async def test_verify_ca_refuses_a_certificate_from_another_authority(
    database_urls: DatabaseUrls, server_certificate: Path | None, caplog: pytest.LogCaptureFixture
) -> None:
    status, _ = await readiness(
        with_tls(database_urls, sslmode="verify-ca", sslrootcert=str(another_authority()))
    )

    assert status == 503
    if server_certificate is not None:
        assert "certificate verify failed" in caplog.text


async def test_verify_full_checks_the_host_name_too(
    database_urls: DatabaseUrls,
    server_certificate: Path | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = str(server_certificate or another_authority())

    # 127.0.0.1 is not the name on the certificate.
    status, _ = await readiness(with_tls(database_urls, sslmode="verify-full", sslrootcert=root))
    assert status == 503
    if server_certificate is None:
        return
    assert "certificate verify failed" in caplog.text

    # The name on it, where it leads to this server, is accepted.
    name = certificate_name(server_certificate)
    if socket.gethostbyname(name) == make_url(database_urls.app).host:
        status, encrypted = await readiness(
            with_tls(database_urls, host=name, sslmode="verify-full", sslrootcert=root)
        )
        assert (status, encrypted) == (200, True)
