"""Whether a private key and a certificate belong together.

Asked of the agent's apiserver certificate (a half-written pair is replaced) and of the
agents CA the servers load (a key that is not the certificate's is refused at start).
Pure: keys and certificates in, a yes or no out.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import (
    PrivateKeyTypes,
    PublicKeyTypes,
)


def public_der(key: PublicKeyTypes) -> bytes:
    """The public key as DER SubjectPublicKeyInfo: equal bytes, equal keys."""
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def belongs(certificate: x509.Certificate, key: PrivateKeyTypes) -> bool:
    """True when `key` is the private half of `certificate`'s public key."""
    return public_der(key.public_key()) == public_der(certificate.public_key())
