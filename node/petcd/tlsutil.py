"""TLS for the client and peer ports, as etcd 3.5 configures it.

One :class:`TLSInfo` per side (client: ``--cert-file --key-file --trusted-ca-file
--client-cert-auth ...``; peer: ``--peer-*``), built by :func:`client_tls_info` and
:func:`peer_tls_info`; :func:`apply_auto_tls` fills in a self-signed pair under
``<data-dir>/fixtures/{client,peer}`` for ``--auto-tls``/``--peer-auto-tls`` (etcd's
``SelfCert``: ECDSA P-521, ``O=etcd``, server-auth usage, SANs = the listen hosts, valid
``--self-signed-cert-validity`` years; an existing pair there is reused).

Contracts (each mirrors etcd's ``client/pkg/transport`` TLSInfo):

* :meth:`TLSInfo.server_context`: TLS 1.2 (etcd caps servers at 1.2), the cert/key pair, and
  client certificates *required and verified* when ``trusted_ca_file`` is set or
  ``client_cert_auth`` is on (etcd requires them in either case), against that CA file or, with
  none, the system roots.
* :meth:`TLSInfo.client_context`: what a member uses to dial: the client pair
  (``client_cert_file``/``client_key_file`` if set, else ``cert_file``/``key_file``), the CA file
  (else system roots), hostname checking; a self-signed (auto TLS) info skips verification, as
  etcd's ``InsecureSkipVerify`` for self certs.
* :meth:`TLSInfo.check_peer`: the checks etcd makes after a handshake on its listeners: CRL
  serials, ``allowed_cn``/``allowed_hostname`` and, on peer listeners, that a client
  certificate with SANs names the remote address (``checkSAN``). Returns an error string, or
  ``""`` when the connection may proceed.

gRPC clients of another member's client port (followers forwarding to the leader) use
:class:`GrpcClientTLS`: an ``http://`` URL gets an insecure channel, an ``https://`` one a TLS
channel built from the *client* side's TLSInfo (``--trusted-ca-file`` to verify the leader,
``--client-cert-file``/``--cert-file`` as the client certificate) -- what etcd's own internal
clients of the client port (its gRPC gateway) use. gRPC cannot skip verification, so with
``--auto-tls`` the peer's self-signed certificate is fetched once and pinned as the only root
(trust on first use, the equivalent of etcd's ``InsecureSkipVerify`` for self certs).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from petcd import errors
from petcd.config import Config, ConfigError
from petcd.logutil import Logger

__all__ = [
    "GrpcClientTLS",
    "NotPinnedError",
    "ServerTLS",
    "TLSInfo",
    "apply_auto_tls",
    "check_listen_urls",
    "client_tls_info",
    "configure",
    "is_secure",
    "peer_dial_context",
    "peer_tls_info",
    "self_cert",
]

ALPN_CLIENT_PORT = ["http/1.1", "h2"]
"""ALPN on the client port, in the server's order of preference: a client offering both
(curl, browsers) gets HTTP/1.1, which the client-port front serves itself; gRPC clients offer
only h2 and get it (their HTTP/2 is spliced to the gRPC server)."""


def is_secure(url: str) -> bool:
    """True for ``https://`` and ``unixs://`` URLs."""
    return urlsplit(url).scheme in ("https", "unixs")


@dataclass(frozen=True, slots=True)
class TLSInfo:
    """One side's TLS material and policy (see the module docstring)."""

    cert_file: str = ""
    key_file: str = ""
    client_cert_file: str = ""
    client_key_file: str = ""
    trusted_ca_file: str = ""
    client_cert_auth: bool = False
    crl_file: str = ""
    allowed_cn: str = ""
    allowed_hostname: str = ""
    skip_client_san_verify: bool = False
    self_cert: bool = False

    def empty(self) -> bool:
        """No server pair configured (etcd's ``TLSInfo.Empty``)."""
        return self.cert_file == "" and self.key_file == ""

    @property
    def requires_client_cert(self) -> bool:
        return self.trusted_ca_file != "" or self.client_cert_auth

    def _client_pair(self) -> tuple[str, str]:
        if self.client_cert_file:
            return self.client_cert_file, self.client_key_file
        return self.cert_file, self.key_file

    def validate(self) -> None:
        """Load every file once so bad material fails at start-up, not on the first
        connection. Raises ConfigError."""
        if self.empty():
            return
        if not self.cert_file or not self.key_file:
            raise ConfigError(
                errors.TLS_KEY_CERT_PAIR.format(key=self.key_file, cert=self.cert_file)
            )
        if bool(self.client_cert_file) != bool(self.client_key_file):
            raise ConfigError(
                errors.TLS_CLIENT_KEY_CERT_PAIR.format(
                    key=self.client_key_file, cert=self.client_cert_file
                )
            )
        if self.allowed_cn and self.allowed_hostname:
            raise ConfigError(
                errors.TLS_CN_AND_HOSTNAME.format(
                    cn=self.allowed_cn, hostname=self.allowed_hostname
                )
            )
        self.server_context()
        self.client_context()
        if self.crl_file:
            _load_crl_serials(self.crl_file)

    def server_context(self, alpn: list[str] | None = None) -> ssl.SSLContext:
        """A listener's context; raises ConfigError when a file cannot be used."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        _load_pair(ctx, self.cert_file, self.key_file)
        if self.requires_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            if self.trusted_ca_file:
                _load_ca(ctx, self.trusted_ca_file)
            else:
                ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        if alpn:
            ctx.set_alpn_protocols(alpn)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A dialer's context (see the module docstring)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.self_cert:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.trusted_ca_file:
            _load_ca(ctx, self.trusted_ca_file)
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        cert, key = self._client_pair()
        if cert and key:
            _load_pair(ctx, cert, key)
        return ctx

    def client_pem(self) -> tuple[bytes | None, bytes | None, bytes | None]:
        """(root CA PEM or None for system roots, client key PEM, client cert PEM) for gRPC."""
        root = Path(self.trusted_ca_file).read_bytes() if self.trusted_ca_file else None
        cert, key = self._client_pair()
        if not (cert and key):
            return root, None, None
        return root, Path(key).read_bytes(), Path(cert).read_bytes()

    def check_peer(self, der: bytes | None, remote_host: str, check_san: bool) -> str:
        """Post-handshake checks on a listener (see the module docstring); '' means pass."""
        if der is None:
            return ""
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            return f"tls: unparsable client certificate: {exc}"
        if self.crl_file:
            try:
                revoked = _load_crl_serials(self.crl_file)
            except ConfigError as exc:
                return str(exc)
            if cert.serial_number in revoked:
                return f"transport: certificate serial {cert.serial_number:x} revoked"
        if check_san and not self.skip_client_san_verify:
            err = _check_cert_san(cert, remote_host)
            if err:
                return err
        if self.allowed_cn:
            cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if not cns or cns[0].value != self.allowed_cn:
                return "client certificate authentication failed"
        if self.allowed_hostname and not _verify_hostname(cert, self.allowed_hostname):
            return "client certificate authentication failed"
        return ""


# --------------------------------------------------------------------------------------------
# Building TLSInfo from the configuration


def client_tls_info(cfg: Config) -> TLSInfo:
    """The client side (``--cert-file`` and friends) as given on the command line."""
    return TLSInfo(
        cert_file=cfg.cert_file,
        key_file=cfg.key_file,
        client_cert_file=cfg.client_cert_file,
        client_key_file=cfg.client_key_file,
        trusted_ca_file=cfg.trusted_ca_file,
        client_cert_auth=cfg.client_cert_auth,
        crl_file=cfg.client_crl_file,
        allowed_hostname=cfg.client_cert_allowed_hostname,
    )


def peer_tls_info(cfg: Config) -> TLSInfo:
    """The peer side (``--peer-cert-file`` and friends) as given on the command line."""
    return TLSInfo(
        cert_file=cfg.peer_cert_file,
        key_file=cfg.peer_key_file,
        client_cert_file=cfg.peer_client_cert_file,
        client_key_file=cfg.peer_client_key_file,
        trusted_ca_file=cfg.peer_trusted_ca_file,
        client_cert_auth=cfg.peer_client_cert_auth,
        crl_file=cfg.peer_crl_file,
        allowed_cn=cfg.peer_cert_allowed_cn,
        allowed_hostname=cfg.peer_cert_allowed_hostname,
        skip_client_san_verify=cfg.experimental_peer_skip_client_san_verification,
    )


def apply_auto_tls(
    info: TLSInfo, auto: bool, listen_urls: list[str], fixtures_dir: Path, validity_years: int,
    logger: Logger, side: str,
) -> TLSInfo:
    """etcd's ``ClientSelfCert``/``PeerSelfCert``: with ``auto`` and no cert given, a
    self-signed pair in ``fixtures_dir`` for the listen hosts; given certs win (warned)."""
    if not auto:
        return info
    if not info.empty():
        logger.warning(f"ignoring {side} auto TLS since certs given")
        return info
    hosts = [urlsplit(u).netloc for u in listen_urls]
    cert, key = self_cert(fixtures_dir, hosts, validity_years, logger)
    return replace(
        info, cert_file=cert, key_file=key, client_cert_file=cert, client_key_file=key,
        self_cert=True,
    )


@dataclass(frozen=True, slots=True)
class ServerTLS:
    """A member's TLS for both sides, after auto TLS."""

    client: TLSInfo
    peer: TLSInfo


def configure(cfg: Config, logger: Logger) -> ServerTLS:
    """Everything etcd does about TLS before it listens (``configurePeerListeners`` then
    ``configureClientListeners``): auto TLS, "starting with ... TLS" logs, per-URL checks,
    loading every file. Raises ConfigError with etcd's messages."""
    fixtures = Path(cfg.data_dir or f"{cfg.name}.etcd") / "fixtures"
    sides: list[TLSInfo] = []
    for side, info, auto, urls in (
        ("peer", peer_tls_info(cfg), cfg.peer_auto_tls, cfg.listen_peer_urls),
        ("client", client_tls_info(cfg), cfg.auto_tls, cfg.listen_client_urls),
    ):
        info = apply_auto_tls(
            info, auto, urls, fixtures / side, cfg.self_signed_cert_validity, logger, side
        )
        if not info.empty():
            logger.info(
                f"starting with {side} TLS",
                **{"tls-info": _describe(info), "cipher-suites": list(cfg.cipher_suites)},
            )
        check_listen_urls(info, urls, side, logger)
        info.validate()
        sides.append(info)
    return ServerTLS(client=sides[1], peer=sides[0])


def peer_dial_context(cfg: Config) -> ssl.SSLContext:
    """The context a member dials peers with before its transport exists (joining: GET
    /members); with ``--peer-auto-tls`` and no certs it does not verify, as etcd."""
    info = peer_tls_info(cfg)
    if cfg.peer_auto_tls and info.empty():
        info = replace(info, self_cert=True)
    return info.client_context()


def _describe(info: TLSInfo) -> str:
    return (
        f"cert = {info.cert_file}, key = {info.key_file}, client-cert={info.client_cert_file}, "
        f"client-key={info.client_key_file}, trusted-ca = {info.trusted_ca_file}, "
        f"client-cert-auth = {str(info.client_cert_auth).lower()}, crl-file = {info.crl_file}"
    )


def check_listen_urls(info: TLSInfo, urls: list[str], side: str, logger: Logger) -> None:
    """etcd's per-URL checks: an https URL needs a pair (ConfigError with etcd's text); an
    http URL with TLS flags set only warns that they are ignored for it."""
    flags = "--cert-file, --key-file" if side == "client" else "--peer-cert-file, --peer-key-file"
    auth = "--client-cert-auth" if side == "client" else "--peer-client-cert-auth"
    for u in urls:
        if not is_secure(u):
            field = {f"{side}-url": u}
            if not info.empty():
                logger.warning(
                    "scheme is HTTP while key and cert files are present; ignoring key and "
                    "cert files", **field,
                )
            if info.client_cert_auth:
                logger.warning(
                    f"scheme is HTTP while {auth} is enabled; ignoring client cert auth for "
                    "this URL", **field,
                )
        elif info.empty():
            raise ConfigError(
                errors.TLS_HTTPS_NEEDS_CERT.format(flags=flags, side=side, url=u)
            )


# --------------------------------------------------------------------------------------------
# Self-signed certificates


def self_cert(
    dirpath: Path, hosts: list[str], validity_years: int, logger: Logger | None = None
) -> tuple[str, str]:
    """Create (or reuse) ``cert.pem``/``key.pem`` in ``dirpath``; returns their absolute
    paths. ``hosts`` are ``host:port`` (or bare hosts): IPs become IP SANs, names DNS SANs."""
    if validity_years <= 0:
        raise ConfigError(errors.TLS_SELF_CERT_VALIDITY)
    dirpath.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path = (dirpath / "cert.pem").resolve()
    key_path = (dirpath / "key.pem").resolve()
    if cert_path.is_file() and key_path.is_file():
        return str(cert_path), str(key_path)
    now = datetime.datetime.now(datetime.UTC)
    not_after = now + datetime.timedelta(days=365 * validity_years)
    if logger is not None:
        logger.warning(
            "automatically generate certificates",
            **{"certificate-validity-bound-not-after": not_after.isoformat()},
        )
    key = ec.generate_private_key(ec.SECP521R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "etcd")])
    sans: list[x509.GeneralName] = []
    for h in hosts:
        host = _strip_port(h)
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(os.urandom(16), "big") >> 1)
        .not_valid_before(now)
        .not_valid_after(not_after)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if logger is not None:
        logger.info("created cert file", path=str(cert_path))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    if logger is not None:
        logger.info("created key file", path=str(key_path))
    return str(cert_path), str(key_path)


# --------------------------------------------------------------------------------------------
# gRPC clients of other members' client ports


class NotPinnedError(Exception):
    """An auto-TLS peer's certificate is not pinned yet: ``await prepare(url)`` first."""


class GrpcClientTLS:
    """Makes gRPC channels to member client URLs (see the module docstring)."""

    def __init__(self, info: TLSInfo | None = None) -> None:
        self.info = info
        self._pins: dict[str, tuple[bytes, str]] = {}

    def channel(self, url: str) -> grpc.aio.Channel:
        """A new channel to ``url``; NotPinnedError for an unpinned auto-TLS peer."""
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        target = f"[{host}]:{parts.port or 2379}" if ":" in host else f"{host}:{parts.port or 2379}"
        if not is_secure(url):
            return grpc.aio.insecure_channel(target)
        info = self.info or TLSInfo()
        root, key, chain = info.client_pem()
        options: list[tuple[str, str]] = []
        if info.self_cert:
            pin = self._pins.get(target)
            if pin is None:
                raise NotPinnedError(target)
            root, override = pin
            if override:
                options.append(("grpc.ssl_target_name_override", override))
        creds = grpc.ssl_channel_credentials(root, key, chain)
        return grpc.aio.secure_channel(target, creds, options=options)

    def pinned(self, url: str) -> bool:
        """True when ``channel(url)`` will not raise NotPinnedError."""
        info = self.info
        if not is_secure(url) or info is None or not info.self_cert:
            return True
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        target = f"[{host}]:{parts.port or 2379}" if ":" in host else f"{host}:{parts.port or 2379}"
        return target in self._pins

    async def prepare(self, url: str, timeout: float = 2.0) -> None:
        """Pin the certificate an auto-TLS peer at ``url`` presents (no-op otherwise).
        Raises OSError/TimeoutError/ssl.SSLError when it cannot be reached."""
        if self.pinned(url):
            return
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or 2379
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port, ssl=ctx)
        try:
            sslobj = writer.get_extra_info("ssl_object")
            der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
        finally:
            writer.close()
        if not der:
            raise ssl.SSLError(f"{url} presented no certificate")
        cert = x509.load_der_x509_certificate(der)
        override = ""
        if not _verify_hostname(cert, host):
            ips, names = _sans(cert)
            override = (names or ips or [""])[0]
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._pins[target] = (cert.public_bytes(serialization.Encoding.PEM), override)


# --------------------------------------------------------------------------------------------
# Helpers


def _strip_port(hostport: str) -> str:
    if hostport.startswith("["):
        return hostport[1:].split("]", 1)[0]
    if hostport.count(":") == 1:
        return hostport.split(":", 1)[0]
    return hostport


def _load_pair(ctx: ssl.SSLContext, cert: str, key: str) -> None:
    try:
        ctx.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise ConfigError(errors.TLS_NO_SUCH_FILE.format(path=exc.filename)) from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            errors.TLS_LOAD_KEY_PAIR.format(cert=cert, key=key, error=exc)
        ) from None


def _load_ca(ctx: ssl.SSLContext, ca: str) -> None:
    try:
        ctx.load_verify_locations(cafile=ca)
    except FileNotFoundError:
        raise ConfigError(errors.TLS_NO_SUCH_FILE.format(path=ca)) from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(errors.TLS_LOAD_CA.format(ca=ca, error=exc)) from None


def _load_crl_serials(path: str) -> set[int]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(errors.TLS_OPEN.format(path=path, error=exc.strerror or exc)) from None
    try:
        crl = (
            x509.load_pem_x509_crl(data) if b"-----BEGIN" in data else x509.load_der_x509_crl(data)
        )
    except ValueError as exc:
        raise ConfigError(errors.TLS_PARSE_CRL.format(path=path, error=exc)) from None
    return {r.serial_number for r in crl}


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """(IP SANs as text, DNS SANs) of ``cert``."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    ips = [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
    return ips, list(ext.get_values_for_type(x509.DNSName))


def _verify_hostname(cert: x509.Certificate, host: str) -> bool:
    """Go's ``Certificate.VerifyHostname`` for the cases etcd relies on (IP or DNS name,
    ``*.`` wildcards in the left-most label)."""
    ips, names = _sans(cert)
    try:
        return str(ipaddress.ip_address(host.strip("[]"))) in ips
    except ValueError:
        pass
    host = host.lower().rstrip(".")
    for n in names:
        n = n.lower().rstrip(".")
        if n == host:
            return True
        if n.startswith("*.") and "." in host and host.split(".", 1)[1] == n[2:]:
            return True
    return False


def _check_cert_san(cert: x509.Certificate, remote_host: str) -> str:
    """etcd's ``checkCertSAN``: a client certificate with SANs must name the remote IP,
    directly or through a DNS SAN that resolves to it."""
    ips, names = _sans(cert)
    if not ips and not names:
        return ""
    if ips and _verify_hostname(cert, remote_host):
        return ""
    if ips and not names:
        return f"x509: certificate is valid for {', '.join(ips)}, not {remote_host}"
    for n in names:
        if n.startswith("*."):
            continue
        try:
            infos = socket.getaddrinfo(n, None, proto=socket.IPPROTO_TCP)
        except OSError:
            continue
        if any(str(info[4][0]) == remote_host for info in infos):
            return ""
    return f'tls: "{remote_host}" does not match any of DNSNames {_go_quote(names)}'


def _go_quote(items: list[str]) -> str:
    return "[" + " ".join(f'"{s}"' for s in items) + "]"
