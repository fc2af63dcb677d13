"""Q5's Web Push, both ends real: VAPID (RFC 8292) checked and RFC 8291 messages decrypted."""

from __future__ import annotations

import json
import time

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush

from labsupport.labs.interview import webpush as wp

CONTACT = {"sub": "mailto:ops@example.com"}


@pytest.fixture
def service():
    handle = wp.start(name="interview-push-test")
    try:
        yield handle
    finally:
        handle.stop()


def server_key() -> tuple[Vapid02, str]:
    vapid = Vapid02()
    vapid.generate_keys()
    raw = vapid.public_key.public_bytes(serialization.Encoding.X962,
                                        serialization.PublicFormat.UncompressedPoint)
    return vapid, wp.b64url(raw)


def test_a_signed_encrypted_push_is_verified_and_decrypted(service):
    vapid, public = server_key()
    subscription = service.subscribe(public)
    reply = webpush(subscription.info(), json.dumps({"text": "Your order 7 is confirmed"}),
                    vapid_private_key=vapid, vapid_claims=dict(CONTACT), ttl=60)
    assert reply.status_code == 201
    assert subscription.received == [{"text": "Your order 7 is confirmed"}]
    assert b"order" not in json.dumps(service.stored).encode()  # the service saw ciphertext


def test_a_token_from_another_key_is_403(service):
    _, public = server_key()
    subscription = service.subscribe(public)
    other, _ = server_key()
    with pytest.raises(WebPushException) as caught:
        webpush(subscription.info(), "x", vapid_private_key=other,
                vapid_claims=dict(CONTACT), ttl=60)
    assert caught.value.response.status_code == 403
    assert subscription.received == []


def _token(vapid, claims):
    """An ES256 JWT signed by hand, so the test can send claims py_vapid would refuse."""
    head = wp.b64url(json.dumps({"typ": "JWT", "alg": "ES256"}).encode())
    body = wp.b64url(json.dumps(claims).encode())
    r, s = decode_dss_signature(vapid.private_key.sign(f"{head}.{body}".encode(),
                                                       ec.ECDSA(hashes.SHA256())))
    signature = wp.b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    raw = vapid.public_key.public_bytes(serialization.Encoding.X962,
                                        serialization.PublicFormat.UncompressedPoint)
    return f"vapid t={head}.{body}.{signature}, k={wp.b64url(raw)}"


def _post(service, subscription, vapid, claims, body=b"x", **headers):
    token = _token(vapid, claims)
    return requests.post(subscription.endpoint, data=body, timeout=5,  # checked before decrypting
                         headers={"Authorization": token, "TTL": "60",
                                  "Content-Encoding": "aes128gcm", **headers})


@pytest.mark.parametrize("change, message", [
    ({"aud": "https://push.example.com"}, "is not this push service's origin"),
    ({"exp": int(time.time()) - 10}, "exp must be in the next 24 hours"),
    ({"exp": int(time.time()) + 3 * 86400}, "exp must be in the next 24 hours"),
    ({"sub": "ops"}, "needs a sub"),
])
def test_bad_claims_are_401(service, change, message):
    vapid, public = server_key()
    subscription = service.subscribe(public)
    claims = {"aud": service.url, "exp": int(time.time()) + 600, **CONTACT, **change}
    reply = _post(service, subscription, vapid, claims)
    assert reply.status_code == 401 and message in reply.json()["error"]["message"]


def test_a_tampered_token_is_401_and_a_missing_ttl_400(service):
    vapid, public = server_key()
    subscription = service.subscribe(public)
    claims = {"aud": service.url, "exp": int(time.time()) + 600, **CONTACT}
    good = _token(vapid, claims)
    tampered = good.replace("t=", "t=x", 1)
    reply = requests.post(subscription.endpoint, data=b"x", timeout=5,
                          headers={"Authorization": tampered, "TTL": "60"})
    assert reply.status_code == 401
    reply = requests.post(subscription.endpoint, data=b"x", timeout=5,
                          headers={"Authorization": good})
    assert reply.status_code == 400 and "TTL" in reply.json()["error"]["message"]


def test_a_body_not_encrypted_for_the_subscription_is_400(service):
    vapid, public = server_key()
    subscription = service.subscribe(public)
    claims = {"aud": service.url, "exp": int(time.time()) + 600, **CONTACT}
    reply = _post(service, subscription, vapid, claims, body=b"plain text, not RFC 8291")
    assert reply.status_code == 400 and "does not decrypt" in reply.json()["error"]["message"]
    assert subscription.received == []
