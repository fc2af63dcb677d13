"""Q5 with the app closed: Web Push, both ends run for real on 127.0.0.1.

A browser that subscribes gets a *subscription*: an endpoint URL at its push
service, its own P-256 public key (``p256dh``) and an auth secret. The
application server sends each notification there with ``pywebpush``: the body
encrypted for the browser (RFC 8291, ``aes128gcm``) and a VAPID token signed with
the server's key (RFC 8292). :func:`start` runs the push service's side: it checks
the token (signature with the key in ``k=``, that key is the one the subscription
was made with, ``aud`` is this service's origin, ``exp`` within 24 h, a ``sub``
contact), and, standing in for the browser, decrypts the message. The push
service itself stores only ciphertext.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from flask import Flask, Response, jsonify, request

from ...api_errors import APIError, install_error_handlers
from ...harness import ServerHandle, serve_wsgi

__all__ = ["start", "PushServiceHandle", "Subscription", "b64url", "application_server_key"]


def b64url(raw: bytes) -> str:
    """URL-safe base64 without padding, as Web Push writes keys."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _raw_public(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.X962,
                                         serialization.PublicFormat.UncompressedPoint)


@dataclass
class Subscription:
    """What the browser holds: its keys, and the application server key it subscribed with."""

    id: str
    endpoint: str
    application_server_key: str
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    auth: bytes = field(repr=False)
    received: list[dict[str, Any]] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        """The ``subscription_info`` the page sends to the application server."""
        return {"endpoint": self.endpoint,
                "keys": {"p256dh": b64url(_raw_public(self.private_key)),
                         "auth": b64url(self.auth)}}


class PushServiceHandle(ServerHandle):
    """The push service: ``subscribe(application_server_key)`` makes a browser's subscription."""

    subscriptions: dict[str, Subscription]
    stored: list[dict[str, Any]]

    def subscribe(self, application_server_key: str) -> Subscription:
        """A browser subscribes, giving the application server's VAPID public key."""
        sub_id = uuid.uuid4().hex
        subscription = Subscription(sub_id, f"{self.url}/push/{sub_id}", application_server_key,
                                    ec.generate_private_key(ec.SECP256R1()), os.urandom(16))
        self.subscriptions[sub_id] = subscription
        return subscription


def _verify_vapid(header: str, origin: str, subscription: Subscription) -> dict[str, Any]:
    """The claims of a valid ``Authorization: vapid t=..., k=...`` (RFC 8292), else APIError."""
    scheme, _, params = header.partition(" ")
    fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
    if scheme.lower() != "vapid" or "t" not in fields or "k" not in fields:
        raise APIError(401, "Authorization must be 'vapid t=<JWT>, k=<key>' (RFC 8292)")
    if fields["k"] != subscription.application_server_key:
        raise APIError(403, "k is not the application server key this subscription was made "
                            "with (RFC 8292 §4.2)")
    try:
        head, body, signature = fields["t"].split(".")
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _unb64url(fields["k"]))
        raw = _unb64url(signature)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                   int.from_bytes(raw[32:], "big"))
        key.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
        claims: dict[str, Any] = json.loads(_unb64url(body))
        algorithm = json.loads(_unb64url(head)).get("alg")
    except (ValueError, InvalidSignature):
        raise APIError(401, "the VAPID token's ES256 signature does not verify with k") from None
    now = time.time()
    if algorithm != "ES256":
        raise APIError(401, f"the VAPID token must be signed with ES256, not {algorithm!r}")
    if claims.get("aud") != origin:
        raise APIError(401, f"the token's aud {claims.get('aud')!r} is not this push "
                            f"service's origin {origin!r}")
    if not isinstance(claims.get("exp"), int) or not now < claims["exp"] <= now + 86400:
        raise APIError(401, "the token's exp must be in the next 24 hours (RFC 8292 §2)")
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        raise APIError(401, "the token needs a sub: a mailto: or https: contact (RFC 8292 §2.1)")
    return claims


def start(*, name: str = "interview-push-service") -> PushServiceHandle:
    """Serve a push service on 127.0.0.1 (a free port)."""
    app = Flask(__name__)
    install_error_handlers(app)
    holder: dict[str, PushServiceHandle] = {}

    @app.post("/push/<sub_id>")
    def push(sub_id: str) -> tuple[Response, int]:
        handle = holder["handle"]
        subscription = handle.subscriptions.get(sub_id)
        if subscription is None:
            raise APIError(404, "No such subscription (it expired or was never made)")
        claims = _verify_vapid(request.headers.get("Authorization", ""), handle.url,
                               subscription)
        if request.headers.get("TTL") is None:
            raise APIError(400, "A push message needs a TTL header (RFC 8030 §5.2)")
        if request.headers.get("Content-Encoding") != "aes128gcm":
            raise APIError(415, "Content-Encoding must be aes128gcm (RFC 8291)")
        ciphertext = request.get_data()
        handle.stored.append({"subscription": sub_id, "bytes": len(ciphertext),
                              "sub": claims["sub"]})
        try:  # the browser's side: only it has the private key and the auth secret
            plaintext = http_ece.decrypt(ciphertext, private_key=subscription.private_key,
                                         auth_secret=subscription.auth, version="aes128gcm")
        except Exception:
            raise APIError(400, "the message does not decrypt for this subscription "
                                "(RFC 8291)") from None
        subscription.received.append(json.loads(plaintext))
        return jsonify({"stored": len(ciphertext)}), 201

    handle = serve_wsgi(name, app, handle=PushServiceHandle, subscriptions={}, stored=[])
    holder["handle"] = handle
    return handle


def application_server_key(vapid: Any) -> str:
    """The VAPID public key as a page passes it to ``pushManager.subscribe`` (base64url)."""
    return b64url(vapid.public_key.public_bytes(serialization.Encoding.X962,
                                                serialization.PublicFormat.UncompressedPoint))
