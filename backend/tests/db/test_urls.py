"""Every libpq URL parameter, as asyncpg ends up receiving it."""

import ssl
import subprocess
from pathlib import Path

import pytest

from todo.db.urls import DatabaseTarget, parse_database_url

NEON = (
    "postgresql://u:p@ep-x-123.eu-central-1.aws.neon.tech/db"
    "?sslmode=require&channel_binding=require"
)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A self-signed certificate, its plain key, and the key encrypted with 'secret'."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key, encrypted = folder / "cert.pem", folder / "key.pem", folder / "encrypted.pem"
    new_certificate = [
        *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
        *("-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)),
    ]
    subprocess.run(new_certificate, check=True, capture_output=True)
    encrypt_key = [
        *("openssl", "pkey", "-in", str(key), "-aes256", "-passout", "pass:secret"),
        *("-out", str(encrypted)),
    ]
    subprocess.run(encrypt_key, check=True, capture_output=True)
    return cert, key, encrypted


def tls_context(target: DatabaseTarget) -> ssl.SSLContext:
    context = target.connect_args["ssl"]
    assert isinstance(context, ssl.SSLContext)
    return context


def test_neons_string_is_taken_as_it_is() -> None:
    target = parse_database_url(NEON)

    assert target.url.render_as_string(hide_password=False) == (
        "postgresql+asyncpg://u:p@ep-x-123.eu-central-1.aws.neon.tech/db"
    )
    context = tls_context(target)
    assert context.verify_mode == ssl.CERT_NONE
    assert not context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert target.unhonoured == ("channel_binding=require",)
    assert not target.is_pooler


def test_neons_pooled_endpoint_is_recognised() -> None:
    pooled = NEON.replace("ep-x-123.", "ep-x-123-pooler.")
    assert parse_database_url(pooled).is_pooler


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgres://u@h/app", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@h/app", "postgresql+asyncpg"),
        ("postgresql+psycopg2://u@h/app", "postgresql+asyncpg"),
        ("sqlite:///var/todo.db", "sqlite+aiosqlite"),
        ("sqlite://", "sqlite+aiosqlite"),
    ],
)
def test_the_async_driver_is_chosen(given: str, driver: str) -> None:
    assert parse_database_url(given).url.drivername == driver


def test_other_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="mysql"):
        parse_database_url("mysql://u@h/app")


def test_no_sslmode_leaves_asyncpgs_default_which_is_libpqs() -> None:
    assert "ssl" not in parse_database_url("postgresql://u@h/db").connect_args


def test_sslmode_disable_turns_tls_off() -> None:
    assert parse_database_url("postgresql://u@h/db?sslmode=disable").connect_args["ssl"] is False


@pytest.mark.parametrize("mode", ["allow", "prefer"])
def test_sslmode_allow_and_prefer_keep_the_fallback_to_plain(mode: str) -> None:
    target = parse_database_url(f"postgresql://u@h/db?sslmode={mode}")
    assert target.connect_args["ssl"] == mode


def test_sslmode_require_encrypts_without_verifying() -> None:
    context = tls_context(parse_database_url("postgresql://u@h/db?sslmode=require"))
    assert context.verify_mode == ssl.CERT_NONE
    assert not context.check_hostname


def test_sslmode_require_with_a_root_certificate_verifies_the_chain(
    certificate: tuple[Path, Path, Path],
) -> None:
    cert, _, _ = certificate
    url = f"postgresql://u@h/db?sslmode=require&sslrootcert={cert}"
    context = tls_context(parse_database_url(url))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert not context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 1


def test_sslmode_verify_ca_checks_the_chain_not_the_host(
    certificate: tuple[Path, Path, Path],
) -> None:
    cert, _, _ = certificate
    url = f"postgresql://u@h/db?sslmode=verify-ca&sslrootcert={cert}"
    context = tls_context(parse_database_url(url))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert not context.check_hostname


def test_sslmode_verify_full_checks_the_chain_and_the_host(
    certificate: tuple[Path, Path, Path],
) -> None:
    cert, _, _ = certificate
    url = f"postgresql://u@h/db?sslmode=verify-full&sslrootcert={cert}"
    context = tls_context(parse_database_url(url))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 1


@pytest.mark.parametrize("root", ["", "&sslrootcert=system"])
def test_verification_without_a_root_file_trusts_the_system_authorities(root: str) -> None:
    context = tls_context(parse_database_url(f"postgresql://u@h/db?sslmode=verify-full{root}"))
    assert context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.cert_store_stats()["x509_ca"] > 1


def test_a_missing_root_certificate_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        parse_database_url(f"postgresql://u@h/db?sslmode=verify-ca&sslrootcert={tmp_path}/no")


def test_an_unknown_sslmode_is_an_error() -> None:
    with pytest.raises(ValueError, match="sslmode must be one of"):
        parse_database_url("postgresql://u@h/db?sslmode=required")


def test_a_client_certificate_is_presented(certificate: tuple[Path, Path, Path]) -> None:
    cert, key, _ = certificate
    url = f"postgresql://u@h/db?sslmode=require&sslcert={cert}&sslkey={key}"
    assert isinstance(parse_database_url(url).connect_args["ssl"], ssl.SSLContext)


def test_sslpassword_unlocks_an_encrypted_client_key(certificate: tuple[Path, Path, Path]) -> None:
    cert, _, encrypted = certificate
    url = f"postgresql://u@h/db?sslmode=require&sslcert={cert}&sslkey={encrypted}"
    assert isinstance(
        parse_database_url(f"{url}&sslpassword=secret").connect_args["ssl"], ssl.SSLContext
    )
    with pytest.raises(ssl.SSLError):
        parse_database_url(f"{url}&sslpassword=wrong")


def test_sslcrl_and_sslcrldir_turn_on_revocation_checks(
    certificate: tuple[Path, Path, Path],
) -> None:
    cert, _, _ = certificate
    base = f"postgresql://u@h/db?sslmode=verify-full&sslrootcert={cert}"
    for extra in (f"&sslcrl={cert}", f"&sslcrldir={cert.parent}"):
        context = tls_context(parse_database_url(base + extra))
        assert context.verify_flags & ssl.VERIFY_CRL_CHECK_CHAIN


def test_tls_protocol_versions_are_bounded() -> None:
    url = "postgresql://u@h/db?sslmode=require&ssl_min_protocol_version=TLSv1.3"
    context = tls_context(parse_database_url(url + "&ssl_max_protocol_version=TLSv1.3"))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert context.maximum_version == ssl.TLSVersion.TLSv1_3
    with pytest.raises(ValueError, match="TLS protocol version"):
        parse_database_url("postgresql://u@h/db?sslmode=require&ssl_min_protocol_version=SSLv3")


def test_sslnegotiation_direct_starts_tls_at_once() -> None:
    target = parse_database_url("postgresql://u@h/db?sslmode=require&sslnegotiation=direct")
    assert target.connect_args["direct_tls"] is True
    assert (
        "direct_tls" not in parse_database_url("postgresql://u@h/db?sslmode=require").connect_args
    )
    with pytest.raises(ValueError, match="sslnegotiation=direct needs"):
        parse_database_url("postgresql://u@h/db?sslmode=prefer&sslnegotiation=direct")
    with pytest.raises(ValueError, match="sslnegotiation must be"):
        parse_database_url("postgresql://u@h/db?sslmode=require&sslnegotiation=sometimes")


def test_tls_settings_that_would_go_unused_are_reported() -> None:
    target = parse_database_url("postgresql://u@h/db?sslmode=prefer&sslrootcert=/ca.pem")
    assert target.unhonoured == ("sslrootcert=/ca.pem",)


def test_connect_timeout_becomes_the_connect_timeout() -> None:
    assert parse_database_url("postgresql://u@h/db?connect_timeout=7").connect_timeout == 7.0
    assert parse_database_url("postgresql://u@h/db").connect_timeout is None
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ValueError, match="connect_timeout"):
            parse_database_url(f"postgresql://u@h/db?connect_timeout={bad}")


def test_startup_parameters_go_in_the_startup_packet() -> None:
    target = parse_database_url(
        "postgresql://u@h/db?application_name=todo&options=endpoint%3Dep-x-123"
    )
    assert target.connect_args["server_settings"] == {
        "application_name": "todo",
        "options": "endpoint=ep-x-123",
    }
    fallback = parse_database_url("postgresql://u@h/db?fallback_application_name=todo-api")
    assert fallback.connect_args["server_settings"] == {"application_name": "todo-api"}
    assert "server_settings" not in parse_database_url("postgresql://u@h/db").connect_args


def test_client_encoding_other_than_utf8_cannot_be_honoured() -> None:
    assert parse_database_url("postgresql://u@h/db?client_encoding=UTF8").unhonoured == ()
    latin = parse_database_url("postgresql://u@h/db?client_encoding=LATIN1")
    assert latin.unhonoured == ("client_encoding=LATIN1",)


def test_parameters_asyncpg_takes_as_they_are() -> None:
    target = parse_database_url(
        "postgresql://u@h/db?target_session_attrs=read-write&krbsrvname=pg"
        "&gsslib=gssapi&passfile=/run/pgpass"
    )
    assert target.connect_args == {
        "target_session_attrs": "read-write",
        "krbsrvname": "pg",
        "gsslib": "gssapi",
        "passfile": "/run/pgpass",
    }


def test_user_password_dbname_and_port_parameters_fill_the_url() -> None:
    target = parse_database_url("postgresql:///?user=u&password=p&dbname=app&port=6543&host=h")
    assert target.url.username == "u"
    assert target.url.password == "p"
    assert target.url.database == "app"
    assert target.url.port == 6543
    # SQLAlchemy's dialect reads `host`, including several hosts, itself.
    assert target.url.query == {"host": "h"}
    with pytest.raises(ValueError, match="port must be an integer"):
        parse_database_url("postgresql://u@h/db?port=x")


def test_the_dialects_own_parameters_stay_for_it() -> None:
    target = parse_database_url("postgresql://u@h/db?prepared_statement_cache_size=0")
    assert target.url.query == {"prepared_statement_cache_size": "0"}


@pytest.mark.parametrize(
    "parameter",
    [
        "channel_binding=require",
        "require_auth=scram-sha-256",
        "gssencmode=require",
        "keepalives_idle=30",
        "tcp_user_timeout=1000",
        "sslsni=0",
        "load_balance_hosts=random",
        "hostaddr=10.0.0.1",
    ],
)
def test_parameters_asyncpg_cannot_honour_are_reported(parameter: str) -> None:
    assert parse_database_url(f"postgresql://u@h/db?{parameter}").unhonoured == (parameter,)


@pytest.mark.parametrize("parameter", ["channel_binding=disable", "gssencmode=disable", "sslsni=1"])
def test_asking_for_what_asyncpg_does_anyway_is_not_reported(parameter: str) -> None:
    assert parse_database_url(f"postgresql://u@h/db?{parameter}").unhonoured == ()


def test_unknown_and_repeated_parameters_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown database URL parameter 'pgbouncer'"):
        parse_database_url("postgresql://u@h/db?pgbouncer=true")
    with pytest.raises(ValueError, match="more than once"):
        parse_database_url("postgresql://u@h/db?sslmode=require&sslmode=disable")


def test_a_plain_asyncpg_connection_gets_the_same_arguments() -> None:
    kwargs = parse_database_url(NEON + "&connect_timeout=3").asyncpg_connect_kwargs()
    assert kwargs["host"] == "ep-x-123.eu-central-1.aws.neon.tech"
    assert kwargs["user"] == "u"
    assert kwargs["password"] == "p"
    assert kwargs["database"] == "db"
    assert kwargs["timeout"] == 3.0
    assert isinstance(kwargs["ssl"], ssl.SSLContext)
