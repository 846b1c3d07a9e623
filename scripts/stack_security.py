"""What locks SeaweedFS's own ports (scripts/stack_services.py starts it): a security.toml in the stack
folder, the weed process's working directory, where weed looks first. Without it, any local account could
list, read, replace and delete every artifact through the filer, master and volume ports, around the S3 keys
and MLflow's logins.

- Every HTTP port of the master, volume server and filer speaks HTTPS only, and only to clients holding a
  certificate of the stack's private CA (mutual TLS); so do the gRPC ports, and the gRPC Unix sockets that
  weed opens in /tmp.
- The volume server also wants a JWT for every read and write, and the filer one for its HTTP API (which
  `start_seaweedfs` turns off anyway) and its IAM gRPC service.

A new CA, certificate and keys are made each time weed starts; the CA's private key is never written down, so
nothing can mint another certificate. `cryptography` comes with mlflow (it requires it)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scripts.stack_parts import write_private

TLS_FOLDER = "weed-tls"
AUTHORITY = "stack CA"
CERTIFICATE_DAYS = 3650  # made anew at each start; long enough that a stack left running never outlives it
JWT_SECONDS = 10
GRPC_SIDES = ("master", "volume", "filer", "s3", "client")  # client: what each component dials others with
HTTPS_SERVERS = ("master", "volume", "filer")  # the S3 port keeps plain HTTP and its keys, for MLflow


def write_weed_security(folder: Path) -> None:
    """security.toml (0600) in `folder`, with fresh JWT keys and certificates under folder/weed-tls (0700)."""
    tls = folder / TLS_FOLDER
    tls.mkdir(mode=0o700, exist_ok=True)
    tls.chmod(0o700)
    authority_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    authority, certificate = _authority_certificate(authority_key), _component_certificate(key, authority_key)
    paths = {"ca": tls / "ca.crt", "cert": tls / "stack.crt", "key": tls / "stack.key"}
    write_private(paths["ca"], authority.public_bytes(serialization.Encoding.PEM).decode())
    write_private(paths["cert"], certificate.public_bytes(serialization.Encoding.PEM).decode())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(paths["key"], private.decode())
    write_private(folder / "security.toml", _security_toml(paths))


def _security_toml(paths: dict[str, Path]) -> str:
    pair = {"cert": str(paths["cert"]), "key": str(paths["key"])}
    sections: dict[str, dict[str, object]] = {
        name: {"key": secrets.token_urlsafe(32), "expires_after_seconds": JWT_SECONDS}
        for name in ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
    }
    sections["access"] = {"ui": False}
    sections["filer.expose_directory_metadata"] = {"enabled": False}
    sections["grpc"] = {"ca": str(paths["ca"])}
    sections |= {f"grpc.{side}": pair for side in GRPC_SIDES}
    sections |= {f"https.{server}": pair | {"ca": str(paths["ca"])} for server in HTTPS_SERVERS}
    sections["https.client"] = {"enabled": True} | pair | {"ca": str(paths["ca"])}
    return "".join(_section(name, values) for name, values in sections.items())


def _section(name: str, values: dict[str, object]) -> str:
    """A TOML table; json.dumps writes strings, numbers and booleans the way TOML reads them."""
    return f"[{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items()) + "\n"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _authority_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    usage = dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement"), False
    ) | {"encipher_only": False, "decipher_only": False}
    builder = _builder(AUTHORITY, key.public_key(), authority=True)
    builder = builder.add_extension(
        x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, **usage), critical=True
    )
    return builder.sign(key, hashes.SHA256())


def _component_certificate(
    key: ec.EllipticCurvePrivateKey, authority_key: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    """The one certificate every component presents, as a server and as a client (weed does not check host
    names; 127.0.0.1 is named anyway)."""
    purposes = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    builder = _builder("stack", key.public_key(), authority=False)
    builder = builder.add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
    builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(authority_key, hashes.SHA256())


def _builder(subject: str, public_key: ec.EllipticCurvePublicKey, authority: bool) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(AUTHORITY))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERTIFICATE_DAYS))
        .add_extension(x509.BasicConstraints(ca=authority, path_length=None), critical=True)
    )
