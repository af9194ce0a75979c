"""A stand-in identity provider on loopback: an RSA key, its JWKS over HTTP, signed tokens, and the authorization
code flow with PKCE (it signs in whoever ``sign_in_as`` names, at once, as a partner's single sign-on would)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://id.partner.test"
AUDIENCE = "haven-gateway"
CLIENT_ID = "haven-console"


class IdentityProvider:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = json.dumps({"keys": [{**jwk, "kid": "test-key", "use": "sig", "alg": "RS256"}]}).encode()
        self.sign_in_as: tuple[str, str] | None = None  # (org, role) of whoever signs in next
        self.codes: dict[str, dict[str, str]] = {}
        self.refused: list[str] = []  # why token requests were refused
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/authorize":
                    self._authorize(dict(parse_qsl(url.query)))
                    return
                self._reply(200, provider.jwks)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                issued = provider.codes.pop(form.get("code", ""), None)
                problem = provider.check(issued, form)
                if problem or issued is None:
                    provider.refused.append(problem or "unknown code")
                    self._reply(400, json.dumps({"error": "invalid_grant"}).encode())
                    return
                org, role = issued["org"], issued["role"]
                token = provider.token(org, role, audience=CLIENT_ID, nonce=issued["nonce"])
                self._reply(200, json.dumps({"id_token": token, "token_type": "Bearer"}).encode())

            def _authorize(self, query: dict[str, str]) -> None:
                if provider.sign_in_as is None or query.get("code_challenge_method") != "S256":
                    self._reply(400, b"{}")
                    return
                code = secrets.token_urlsafe(16)
                org, role = provider.sign_in_as
                provider.codes[code] = {**query, "org": org, "role": role}
                back = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"
                self.send_response(302)
                self.send_header("Location", back)
                self.end_headers()

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def check(issued: dict[str, str] | None, form: dict[str, str]) -> str | None:
        """Why a token request must be refused (the PKCE proof, the redirect, the client), if it must."""
        if issued is None:
            return "unknown code"
        proof = base64.urlsafe_b64encode(hashlib.sha256(form.get("code_verifier", "").encode()).digest())
        if proof.rstrip(b"=").decode() != issued.get("code_challenge"):
            return "the PKCE verifier does not match the challenge"
        if form.get("redirect_uri") != issued.get("redirect_uri") or form.get("client_id") != issued.get("client_id"):
            return "another redirect or client"
        return None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}/jwks"

    def __enter__(self) -> IdentityProvider:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()

    def token(
        self, org: str, role: str, *, audience: str = AUDIENCE, expires_in: int = 300, key: Any = None,
        nonce: str | None = None,
    ) -> str:  # fmt: skip
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": audience, "sub": f"user@{org}", "iat": now, "exp": now + expires_in,
                  "haven_org": org, "haven_role": role, **({"nonce": nonce} if nonce else {})}  # fmt: skip
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": "test-key"})

    def console_settings(self) -> dict[str, str]:
        """The gateway's environment for signing in to the console through this provider."""
        return {"HAVEN_OIDC_ISSUER": ISSUER, "HAVEN_OIDC_AUDIENCE": AUDIENCE, "HAVEN_OIDC_JWKS_URL": self.jwks_url,
                "HAVEN_OIDC_AUTHORIZE_URL": f"{self.base_url}/authorize",
                "HAVEN_OIDC_TOKEN_URL": f"{self.base_url}/token", "HAVEN_OIDC_CLIENT_ID": CLIENT_ID}  # fmt: skip
