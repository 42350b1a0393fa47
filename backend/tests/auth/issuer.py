"""A stand-in token issuer: signing keys, tokens, and a JWKS served over real HTTP."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import uuid4

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

ISSUER = "http://127.0.0.1:3000"
AUDIENCE = "http://127.0.0.1:3000"

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass
class SigningKey:
    algorithm: str
    private_key: PrivateKey
    kid: str = field(default_factory=lambda: uuid4().hex)

    def public_jwk(self) -> dict[str, Any]:
        public_key = self.private_key.public_key()
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            jwk = OKPAlgorithm.to_jwk(public_key, as_dict=True)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
        else:
            jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        """A token with these claims; a header field given as None is left out."""
        fields = {name: value for name, value in {"kid": self.kid, **header}.items() if value}
        token = jwt.encode(claims, self.private_key, algorithm=self.algorithm, headers=fields)
        if "kid" not in fields:
            assert "kid" not in jwt.get_unverified_header(token)
        return token


def new_key(algorithm: str = "EdDSA") -> SigningKey:
    private_key: PrivateKey
    if algorithm == "EdDSA":
        private_key = ed25519.Ed25519PrivateKey.generate()
    elif algorithm == "ES256":
        private_key = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "RS256":
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise ValueError(algorithm)
    return SigningKey(algorithm, private_key)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(subject: str = "user-1", **overrides: Any) -> dict[str, Any]:
    """Claims as Better Auth writes them, valid for ten minutes from now."""
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": subject,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not None}


class JwksServer:
    """Serves `keys` as a JWKS on a loopback port and counts the fetches.

    `failing` makes it answer 503, as an issuer in an outage would;
    `raw_document` replaces the JWKS with any bytes.
    """

    def __init__(self) -> None:
        self.keys: list[SigningKey] = []
        self.extra_entries: list[Any] = []
        self.raw_document: bytes | None = None
        self.failing = False
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                if server.failing:
                    self.send_response(503)
                    self.end_headers()
                    return
                entries = [key.public_jwk() for key in server.keys] + server.extra_entries
                body = server.raw_document or json.dumps({"keys": entries}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll interval, so that stopping takes milliseconds, not half a second.
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/api/auth/jwks"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()


class FakeClock:
    """The key cache's clock, moved by the test instead of by waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
