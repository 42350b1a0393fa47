"""Database URLs as providers write them, turned into what SQLAlchemy and asyncpg take.

Neon (like most hosts) hands out libpq URLs such as
`postgresql://u:p@ep-x-123.eu-central-1.aws.neon.tech/db?sslmode=require&channel_binding=require`.
SQLAlchemy passes every query parameter to `asyncpg.connect()` as a keyword, and
asyncpg has no `sslmode` keyword, so each libpq parameter is translated here into
asyncpg's own arguments (`ssl` as an `ssl.SSLContext`, `timeout`, ...). A parameter
asyncpg cannot honour is dropped and named in `unhonoured`, for one warning line;
a parameter libpq does not know either is an error, as it is for libpq.
"""

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import URL, make_url

_POSTGRES_NAMES = {"postgres", "postgresql"}

# Query parameters SQLAlchemy's asyncpg dialect itself understands.
_DIALECT_PARAMETERS = {"host", "prepared_statement_cache_size"}

# libpq parameters with no asyncpg equivalent; a value listed beside one is what
# asyncpg does anyway, so asking for it needs no warning.
_UNSUPPORTED: dict[str, set[str]] = {
    "channel_binding": {"disable"},
    "require_auth": set(),
    "gssencmode": {"disable", "prefer"},
    "gssdelegation": {"0"},
    "sslcertmode": {"disable", "allow"},
    "sslcompression": {"0"},
    "sslsni": {"1"},
    "requirepeer": set(),
    "keepalives": set(),
    "keepalives_idle": set(),
    "keepalives_interval": set(),
    "keepalives_count": set(),
    "tcp_user_timeout": set(),
    "load_balance_hosts": {"disable"},
    "hostaddr": set(),
    "service": set(),
    "replication": {"0", "false", "off", "no"},
    "requiressl": {"0"},
}

_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_TLS_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_UTF8_NAMES = {"utf8", "utf-8", "unicode"}


@dataclass(frozen=True)
class DatabaseTarget:
    """A parsed database URL: what SQLAlchemy gets, and what asyncpg gets beside it."""

    url: URL
    connect_args: dict[str, Any] = field(default_factory=dict)
    unhonoured: tuple[str, ...] = ()
    connect_timeout: float | None = None

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    @property
    def is_pooler(self) -> bool:
        """Whether the host is a Neon pooled endpoint (`ep-...-pooler.<region>...`)."""
        return "-pooler" in (self.url.host or "")

    def asyncpg_connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for a plain `asyncpg.connect()` to the same database."""
        kwargs = {
            "host": self.url.host,
            "port": self.url.port,
            "user": self.url.username,
            "password": self.url.password,
            "database": self.url.database,
            **self.connect_args,
        }
        if self.connect_timeout is not None:
            kwargs["timeout"] = self.connect_timeout
        return {name: value for name, value in kwargs.items() if value is not None}


def parse_database_url(raw_url: str) -> DatabaseTarget:
    url = make_url(raw_url)
    backend = url.drivername.split("+", 1)[0]
    if backend == "sqlite":
        return DatabaseTarget(url.set(drivername="sqlite+aiosqlite"))
    if backend not in _POSTGRES_NAMES:
        raise ValueError(f"unsupported database {backend!r}: use a postgresql:// or sqlite:// URL")
    return _parse_postgres(url.set(drivername="postgresql+asyncpg"))


def _single_values(url: URL) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in url.query.items():
        if name in _DIALECT_PARAMETERS:
            continue
        if not isinstance(value, str):
            raise ValueError(f"database URL parameter {name!r} is given more than once")
        params[name] = value
    return params


def _parse_postgres(url: URL) -> DatabaseTarget:
    params = _single_values(url)
    url = _with_url_parts(url.difference_update_query(params), params)
    connect_timeout = None
    if "connect_timeout" in params:
        connect_timeout = _positive("connect_timeout", params.pop("connect_timeout"))

    connect_args: dict[str, Any] = {}
    unhonoured: list[str] = []
    server_settings = _server_settings(params, unhonoured)
    if server_settings:
        connect_args["server_settings"] = server_settings
    for name in ("target_session_attrs", "krbsrvname", "gsslib", "passfile"):
        if name in params:
            connect_args[name] = params.pop(name)

    ssl_argument, direct_tls, ssl_unhonoured = _ssl_arguments(params)
    if ssl_argument is not None:
        connect_args["ssl"] = ssl_argument
    if direct_tls:
        connect_args["direct_tls"] = True
    unhonoured.extend(ssl_unhonoured)

    for name, value in params.items():
        if name not in _UNSUPPORTED:
            raise ValueError(f"unknown database URL parameter {name!r}")
        if value.lower() not in _UNSUPPORTED[name]:
            unhonoured.append(f"{name}={value}")

    return DatabaseTarget(url, connect_args, tuple(unhonoured), connect_timeout)


def _with_url_parts(url: URL, params: dict[str, str]) -> URL:
    """Move libpq's `user`, `password`, `dbname` and `port` parameters into the URL."""
    if "user" in params:
        url = url.set(username=params.pop("user"))
    if "password" in params:
        url = url.set(password=params.pop("password"))
    if "dbname" in params:
        url = url.set(database=params.pop("dbname"))
    if "port" in params:
        url = url.set(port=_integer("port", params.pop("port")))
    return url


def _server_settings(params: dict[str, str], unhonoured: list[str]) -> dict[str, str]:
    """The startup parameters libpq would send for `params`."""
    settings: dict[str, str] = {}
    fallback_name = params.pop("fallback_application_name", None)
    application_name = params.pop("application_name", fallback_name)
    if application_name:
        settings["application_name"] = application_name
    if "options" in params:
        # Sent in the startup packet, as libpq does; Neon reads `endpoint=...` from it.
        settings["options"] = params.pop("options")
    encoding = params.pop("client_encoding", None)
    if encoding is not None and encoding.lower() not in _UTF8_NAMES:
        # asyncpg always speaks UTF-8.
        unhonoured.append(f"client_encoding={encoding}")
    return settings


_SSL_PARAMETERS = (
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "sslnegotiation",
)


def _ssl_arguments(
    params: dict[str, str],
) -> tuple[ssl.SSLContext | str | bool | None, bool, list[str]]:
    """asyncpg's `ssl` and `direct_tls` for the URL's libpq TLS parameters.

    Consumes those parameters from `params`.
    """
    given = {name: params.pop(name) for name in _SSL_PARAMETERS if name in params}
    mode = given.pop("sslmode", None)
    if mode is not None and mode not in _SSL_MODES:
        raise ValueError(f"sslmode must be one of {', '.join(_SSL_MODES)}, not {mode!r}")
    negotiation = given.pop("sslnegotiation", "postgres")
    if negotiation not in ("postgres", "direct"):
        raise ValueError(f"sslnegotiation must be postgres or direct, not {negotiation!r}")
    direct_tls = negotiation == "direct"

    if mode is None:
        # libpq's default, prefer, is asyncpg's too (and it reads PGSSLMODE).
        if direct_tls:
            raise ValueError("sslnegotiation=direct needs sslmode=require or stronger")
        return None, False, [f"{name}={value}" for name, value in given.items()]
    if mode == "disable":
        return False, False, [f"{name}={value}" for name, value in given.items()]
    if mode in ("allow", "prefer"):
        if direct_tls:
            raise ValueError("sslnegotiation=direct needs sslmode=require or stronger")
        # asyncpg's own mode names keep libpq's fall-back to a plain connection;
        # neither mode verifies the server, so no certificate setting applies.
        return mode, False, [f"{name}={value}" for name, value in given.items()]
    return _tls_context(mode, given), direct_tls, []


def _tls_context(mode: str, given: Mapping[str, str]) -> ssl.SSLContext:
    root_cert = given.get("sslrootcert")
    # As in libpq, `require` with a root certificate named verifies the chain.
    verify_chain = mode in ("verify-ca", "verify-full") or root_cert is not None

    if not verify_chain:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif root_cert in (None, "system"):
        # libpq would insist on ~/.postgresql/root.crt; a service is better served
        # by the system's trusted authorities, which sign Neon's certificates.
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cafile=root_cert)
    if verify_chain:
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = mode == "verify-full"
        if "sslcrl" in given:
            context.load_verify_locations(cafile=given["sslcrl"])
            context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
        if "sslcrldir" in given:
            context.load_verify_locations(capath=given["sslcrldir"])
            context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN

    if "sslcert" in given:
        password = given.get("sslpassword")
        context.load_cert_chain(
            given["sslcert"], keyfile=given.get("sslkey"), password=_constant(password)
        )
    context.minimum_version = _tls_version(given.get("ssl_min_protocol_version", "TLSv1.2"))
    if "ssl_max_protocol_version" in given:
        context.maximum_version = _tls_version(given["ssl_max_protocol_version"])
    if ssl.HAS_ALPN:
        # Required by PostgreSQL 17's direct TLS; harmless otherwise.
        context.set_alpn_protocols(["postgresql"])
    return context


def _constant(value: str | None) -> Callable[[], str] | None:
    return None if value is None else lambda: value


def _tls_version(name: str) -> ssl.TLSVersion:
    try:
        return _TLS_VERSIONS[name]
    except KeyError:
        raise ValueError(
            f"TLS protocol version must be one of {', '.join(_TLS_VERSIONS)}, not {name!r}"
        ) from None


def _integer(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"database URL parameter {name} must be an integer") from None


def _positive(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if number <= 0:
        raise ValueError(f"database URL parameter {name} must be a positive number of seconds")
    return number
