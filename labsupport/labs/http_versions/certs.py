"""A local certificate authority made at run time (trustme): nothing is trusted beyond this kernel.

HTTP/2 in browsers and HTTP/3 everywhere need TLS, so the lab makes its own CA and one
server certificate for ``127.0.0.1`` and ``localhost`` (ECDSA, which Chromium's QUIC accepts).
The files live in a temporary directory for the life of the process.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme

__all__ = ["Authority", "authority"]


@dataclass(frozen=True)
class Authority:
    """Where the CA certificate and the server's certificate chain and key are on disk."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def client_context(self, *, tls: str = "1.3", alpn: tuple[str, ...] = ("http/1.1",)
                       ) -> ssl.SSLContext:
        """A client TLS context trusting only this CA, limited to TLS ``tls`` ("1.2" or "1.3")."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        version = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[tls]
        context.minimum_version = context.maximum_version = version
        context.set_alpn_protocols(list(alpn))
        return context


    def spki_sha256(self) -> str:
        """The base64 SHA-256 of the server certificate's public key (what Chromium's
        ``--ignore-certificate-errors-spki-list`` takes: its QUIC trusts no private CA)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        certificate = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        spki = certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@functools.cache
def authority() -> Authority:
    """The process's CA and server certificate (made once, on first use)."""
    ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
    server = ca.issue_cert("127.0.0.1", "localhost", key_type=trustme.KeyType.ECDSA)
    folder = Path(tempfile.mkdtemp(prefix="protocol-lab-certs-"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    server.private_key_pem.write_to_path(str(folder / "server.key"))
    chain = folder / "server.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    return Authority(folder / "ca.pem", chain, folder / "server.key")
