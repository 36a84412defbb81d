"""A throw-away RSA key standing in for Google's, and ID tokens signed by it."""

from __future__ import annotations

import json
import time
from typing import Any, Optional

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "shop-app.apps.googleusercontent.com"


class FakeGoogle:
    def __init__(self, kid: str = "test-key-1") -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> bytes:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        public.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        return json.dumps({"keys": [public]}).encode()

    def token(self, now: Optional[float] = None, **claims: Any) -> str:
        issued = int(now if now is not None else time.time())
        payload = {
            "iss": "https://accounts.google.com",
            "aud": CLIENT_ID,
            "sub": "1234567890",
            "email": "ravi@gmail.com",
            "email_verified": True,
            "name": "Ravi",
            "iat": issued,
            "exp": issued + 3600,
            **claims,
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, self.private, algorithm="RS256", headers={"kid": self.kid})
