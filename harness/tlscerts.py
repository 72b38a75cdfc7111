"""Test PKI: a CA and leaf certificates written as PEM files, for TLS tests of any target.

`make_pki(dirpath)` writes `ca.pem` and, for each of `server`, `client`, `peer`, a
`<name>.pem`/`<name>-key.pem` pair signed by the CA (ECDSA P-256), valid for 127.0.0.1 and
localhost, with both server-auth and client-auth usage (etcd's peer certs serve both roles).
`other-ca.pem` and `rogue.pem`/`rogue-key.pem` (a pair from an unrelated CA) are written too,
for tests of refused certificates.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 30


@dataclass(frozen=True, slots=True)
class Pair:
    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class Pki:
    """Paths of everything `make_pki` wrote."""

    ca: Path
    server: Pair
    client: Pair
    peer: Pair
    other_ca: Path
    rogue: Pair


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, cn: str
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _write_pair(dirpath: Path, name: str, cert: x509.Certificate,
                key: ec.EllipticCurvePrivateKey) -> Pair:
    p = Pair(dirpath / f"{name}.pem", dirpath / f"{name}-key.pem")
    p.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(p.key, key)
    return p


def make_pki(dirpath: Path) -> Pki:
    """Write a fresh test PKI into `dirpath` (created if missing); see the module docstring."""
    dirpath.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _ca("petcd test CA")
    ca_path = dirpath / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pairs = {n: _write_pair(dirpath, n, *_leaf(ca, ca_key, n)) for n in ("server", "client", "peer")}
    other, other_key = _ca("unrelated CA")
    other_path = dirpath / "other-ca.pem"
    other_path.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    rogue = _write_pair(dirpath, "rogue", *_leaf(other, other_key, "rogue"))
    return Pki(ca_path, pairs["server"], pairs["client"], pairs["peer"], other_path, rogue)
