#!/usr/bin/env python3
"""Mint an HS256 JWT for the bench gateway (python3 stdlib only).

usage: mint-jwt.py SECRET_FILE [ROLE] [TTL_SECS]
Prints the token. Claims: sub=bench, roles=[ROLE], iss=dbx-bench,
aud=dbx-gateway, exp=now+TTL (default 2 hours).
"""
import base64
import hashlib
import hmac
import json
import sys
import time


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    with open(sys.argv[1], "rb") as f:
        secret = f.read().rstrip(b"\r\n")
    role = sys.argv[2] if len(sys.argv) > 2 else "bench"
    ttl = int(sys.argv[3]) if len(sys.argv) > 3 else 7200
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {
        "sub": "bench",
        "roles": [role],
        "iss": "dbx-bench",
        "aud": "dbx-gateway",
        "exp": int(time.time()) + ttl,
    }
    signing_input = (
        b64(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64(json.dumps(claims, separators=(",", ":")).encode())
    )
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    print(signing_input + "." + b64(sig))


if __name__ == "__main__":
    main()
