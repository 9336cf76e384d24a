"""A throw-away test PKI, made at test time: a CA and a server certificate it signs.

The server certificate is valid for ``localhost``, ``127.0.0.1`` and ``::1``.
Made with the ``cryptography`` package when it is installed, otherwise with
the ``openssl`` command-line tool.  Nothing here is secret or reused.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class TestPKI:
    """Paths (PEM files) of a test CA and of a server certificate it signed."""

    __test__ = False  # not a pytest test class

    ca_cert: str
    ca_key: str
    server_cert: str
    server_key: str


def make_test_pki(directory: str, use_openssl: bool = False) -> TestPKI:
    """Write a fresh CA and server certificate under ``directory``."""
    pki = TestPKI(
        ca_cert=os.path.join(directory, "ca.pem"),
        ca_key=os.path.join(directory, "ca.key"),
        server_cert=os.path.join(directory, "server.pem"),
        server_key=os.path.join(directory, "server.key"),
    )
    if not use_openssl:
        try:
            import cryptography  # noqa: F401
        except ImportError:
            use_openssl = True
    if use_openssl:
        _make_with_openssl(pki, directory)
    else:
        _make_with_cryptography(pki)
    return pki


def _make_with_cryptography(pki: TestPKI) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gorillaws test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    def write_key(path: str, k: ec.EllipticCurvePrivateKey) -> None:
        with open(path, "wb") as f:
            f.write(
                k.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )

    with open(pki.ca_cert, "wb") as f:
        f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    with open(pki.server_cert, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    write_key(pki.ca_key, ca_key)
    write_key(pki.server_key, key)


def _make_with_openssl(pki: TestPKI, directory: str) -> None:
    def run(*args: str) -> None:
        try:
            subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)
        except FileNotFoundError:
            msg = "neither the cryptography package nor the openssl CLI is available"
            if os.environ.get("CI") == "true":
                pytest.fail(msg)
            pytest.skip(msg)

    ext = os.path.join(directory, "server.ext")
    with open(ext, "w") as f:
        f.write(
            "basicConstraints=critical,CA:FALSE\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
            "authorityKeyIdentifier=keyid\n"
        )
    csr = os.path.join(directory, "server.csr")
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", pki.ca_key)
    run(
        "req", "-x509", "-new", "-key", pki.ca_key, "-sha256", "-days", "2",
        "-subj", "/CN=gorillaws test CA",
        "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        "-out", pki.ca_cert,
    )
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", pki.server_key)
    run("req", "-new", "-key", pki.server_key, "-subj", "/CN=localhost", "-out", csr)
    run(
        "x509", "-req", "-in", csr, "-CA", pki.ca_cert, "-CAkey", pki.ca_key,
        "-CAcreateserial", "-days", "2", "-sha256", "-extfile", ext, "-out", pki.server_cert,
    )
