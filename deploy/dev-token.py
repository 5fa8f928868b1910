#!/usr/bin/env python3
"""Mint an HS256 JWT for dbx-gateway from a secret file (Python stdlib only).

    deploy/dev-token.py SECRET_FILE [--role admin ...] [--sub NAME]
                        [--iss ISSUER] [--aud AUDIENCE] [--ttl SECONDS]

For trying a deployment out and for smoke tests: production tokens come from
your identity provider. The secret is read the way the gateway reads
`secret_file` (trailing newlines dropped) and is never printed.
"""
import argparse
import base64
import hashlib
import hmac
import json
import sys
import time


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("secret_file")
    ap.add_argument("--role", action="append", dest="roles", help="a role (repeatable; default admin)")
    ap.add_argument("--sub", default="dev-token")
    ap.add_argument("--iss", help="the `iss` claim (when [auth] issuer is set)")
    ap.add_argument("--aud", help="the `aud` claim (when [auth] audience is set)")
    ap.add_argument("--ttl", type=int, default=600, help="seconds until `exp` (default 600)")
    args = ap.parse_args()
    try:
        with open(args.secret_file, "rb") as f:
            secret = f.read().rstrip(b"\r\n")
    except OSError as e:
        print(f"dev-token.py: cannot read {args.secret_file}: {e.strerror}", file=sys.stderr)
        return 2
    if len(secret) < 32:
        print(f"dev-token.py: {args.secret_file}: the gateway wants an HS256 secret of at least 32 bytes", file=sys.stderr)
        return 2
    now = int(time.time())
    claims = {"sub": args.sub, "roles": args.roles or ["admin"], "iat": now, "exp": now + args.ttl}
    if args.iss:
        claims["iss"] = args.iss
    if args.aud:
        claims["aud"] = args.aud
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}".encode("ascii")
    sig = b64url(hmac.new(secret, signing_input, hashlib.sha256).digest())
    print(f"{head}.{body}.{sig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
