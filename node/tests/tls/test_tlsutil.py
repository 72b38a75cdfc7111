"""tlsutil: self-signed certificates, post-handshake checks, configuration errors."""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from petcd import config, tlsutil
from petcd.config import ConfigError
from petcd.logutil import new_logger

from harness.tlscerts import Pki, make_pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def _der(path: Path) -> bytes:
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )


def test_self_cert_is_etcds_shape_and_reused(tmp_path: Path) -> None:
    d = tmp_path / "fixtures" / "client"
    cert_path, key_path = tlsutil.self_cert(d, ["127.0.0.1:2379", "localhost:2379"], 2)
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "etcd"
    ]
    assert cert.issuer == cert.subject
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(i) for i in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert abs(life - datetime.timedelta(days=730)) < datetime.timedelta(minutes=1)
    assert Path(key_path).stat().st_mode & 0o777 == 0o600
    before = Path(cert_path).read_bytes()
    assert tlsutil.self_cert(d, ["10.0.0.1:1"], 1) == (cert_path, key_path)
    assert Path(cert_path).read_bytes() == before
    with pytest.raises(ConfigError, match="selfSignedCertValidity is invalid"):
        tlsutil.self_cert(tmp_path / "other", ["127.0.0.1:1"], 0)


def test_check_peer_cn_hostname_san(pki: Pki) -> None:
    der = _der(pki.peer.cert)  # CN=peer, SANs localhost + 127.0.0.1
    assert tlsutil.TLSInfo().check_peer(der, "127.0.0.1", check_san=True) == ""
    # etcd's checkSAN: the IP SANs miss, so the DNS SANs decide (localhost is not 127.0.0.2).
    assert tlsutil.TLSInfo().check_peer(der, "127.0.0.2", check_san=True) == (
        'tls: "127.0.0.2" does not match any of DNSNames ["localhost"]'
    )
    assert tlsutil.TLSInfo(skip_client_san_verify=True).check_peer(der, "127.0.0.2", True) == ""
    assert tlsutil.TLSInfo(allowed_cn="peer").check_peer(der, "127.0.0.1", False) == ""
    assert tlsutil.TLSInfo(allowed_cn="other").check_peer(der, "127.0.0.1", False) == (
        "client certificate authentication failed"
    )
    assert tlsutil.TLSInfo(allowed_hostname="localhost").check_peer(der, "x", False) == ""
    assert tlsutil.TLSInfo(allowed_hostname="example.com").check_peer(der, "x", False) != ""
    assert tlsutil.TLSInfo().check_peer(None, "127.0.0.1", check_san=True) == ""


def test_check_peer_crl(pki: Pki, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    # Revoke the rogue pair's serial in a CRL signed by a fresh key (etcd only compares serials).
    rogue = x509.load_pem_x509_certificate(pki.rogue.cert.read_bytes())
    key = load_pem_private_key(pki.rogue.key.read_bytes(), None)
    now = datetime.datetime.now(datetime.UTC)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(rogue.issuer)
        .last_update(now)
        .next_update(now + datetime.timedelta(days=1))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(rogue.serial_number)
            .revocation_date(now)
            .build()
        )
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )
    crl_path = tmp_path / "crl.pem"
    crl_path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    info = tlsutil.TLSInfo(crl_file=str(crl_path))
    assert "revoked" in info.check_peer(_der(pki.rogue.cert), "127.0.0.1", False)
    assert info.check_peer(_der(pki.client.cert), "127.0.0.1", False) == ""


def _cfg(*argv: str) -> config.Config:
    return config.parse(list(argv), {})


def test_configure_errors_and_auto_tls(pki: Pki, tmp_path: Path) -> None:
    log = new_logger("info", stream=io.StringIO())
    base = ["--listen-client-urls=https://127.0.0.1:1", "--advertise-client-urls=https://127.0.0.1:1"]
    with pytest.raises(ConfigError) as err:
        tlsutil.configure(_cfg(*base, f"--data-dir={tmp_path / 'a'}"), log)
    assert str(err.value) == (
        "TLS key/cert (--cert-file, --key-file) must be provided for client url "
        "https://127.0.0.1:1 with HTTPS scheme"
    )
    peer = ["--listen-peer-urls=https://127.0.0.1:2", "--initial-advertise-peer-urls=https://127.0.0.1:2"]
    with pytest.raises(ConfigError, match=r"\(--peer-cert-file, --peer-key-file\) must be"):
        tlsutil.configure(_cfg(*peer, f"--data-dir={tmp_path / 'b'}"), log)
    with pytest.raises(ConfigError, match="no such file or directory"):
        tlsutil.configure(
            _cfg(*base, "--cert-file=/nonexistent.pem", f"--key-file={pki.server.key}"), log
        )

    data = tmp_path / "auto"
    tls = tlsutil.configure(_cfg(*base, *peer, "--auto-tls", "--peer-auto-tls",
                                 f"--data-dir={data}"), log)
    assert tls.client.self_cert and tls.peer.self_cert
    assert tls.client.cert_file == str(data / "fixtures" / "client" / "cert.pem")
    assert (data / "fixtures" / "peer" / "key.pem").is_file()
    given = tlsutil.configure(
        _cfg(*base, "--auto-tls", f"--cert-file={pki.server.cert}",
             f"--key-file={pki.server.key}", f"--data-dir={tmp_path / 'c'}"),
        log,
    )
    assert not given.client.self_cert and given.client.cert_file == str(pki.server.cert)
    assert not (tmp_path / "c" / "fixtures").exists()


def test_contexts_require_client_certs_like_etcd(pki: Pki) -> None:
    import ssl

    plain = tlsutil.TLSInfo(cert_file=str(pki.server.cert), key_file=str(pki.server.key))
    assert plain.server_context().verify_mode == ssl.CERT_NONE
    with_ca = tlsutil.TLSInfo(
        cert_file=str(pki.server.cert), key_file=str(pki.server.key), trusted_ca_file=str(pki.ca)
    )
    # etcd requires client certificates whenever a trusted CA is given.
    assert with_ca.server_context().verify_mode == ssl.CERT_REQUIRED
    auto = tlsutil.TLSInfo(self_cert=True).client_context()
    assert auto.verify_mode == ssl.CERT_NONE and not auto.check_hostname
