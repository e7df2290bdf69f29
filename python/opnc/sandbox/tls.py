"""A throwaway certificate authority and a server certificate for the sandbox's HTTPS mode.

:func:`generate` makes, in a private temporary folder (mode 0700):

- ``ca.pem``: the CA certificate; this is the CA bundle that clients trust (``OPNC_CA_BUNDLE``);
- ``server.pem`` and ``server.key``: a certificate for ``127.0.0.1``, ``::1`` and ``localhost``
  signed by that CA, and its key (mode 0600).

The CA's own key is never written to disk: it signs the server certificate and is dropped, so nothing
else can ever be signed by it. Keys are EC P-256 (fast to generate: the sandbox starts in well under
a second). python3-cryptography is used when installed, else the ``openssl`` command line tool; with
the latter, keys only travel through files in the private folder, never through argv.
"""

from __future__ import annotations

import datetime
import importlib.util
import ipaddress
import os
import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass

SERVER_NAMES = ("localhost",)
SERVER_ADDRESSES = ("127.0.0.1", "::1")
VALIDITY_DAYS = 7


@dataclass
class TlsMaterials:
    directory: str
    ca_bundle: str  # the CA certificate (PEM) to trust
    cert_file: str  # the server certificate (PEM)
    key_file: str  # the server key (PEM, unencrypted, mode 0600)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this CA (for tests and the apps' outbound calls)."""
        return ssl.create_default_context(cafile=self.ca_bundle)

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def generate(common_name: str = "opnc sandbox") -> TlsMaterials:
    directory = tempfile.mkdtemp(prefix="opnc-sandbox-tls-")  # mode 0700
    materials = TlsMaterials(
        directory=directory,
        ca_bundle=os.path.join(directory, "ca.pem"),
        cert_file=os.path.join(directory, "server.pem"),
        key_file=os.path.join(directory, "server.key"),
    )
    try:
        if importlib.util.find_spec("cryptography") is not None:
            _generate_with_cryptography(materials, common_name)
        else:
            _generate_with_openssl(materials, common_name)
    except BaseException:
        materials.cleanup()
        raise
    return materials


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write_public(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _generate_with_cryptography(materials: TlsMaterials, common_name: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = now - datetime.timedelta(minutes=5)  # tolerate small clock differences
    not_after = now + datetime.timedelta(days=VALIDITY_DAYS)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                          crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in SERVER_NAMES]
    alt_names += [x509.IPAddress(ipaddress.ip_address(address)) for address in SERVER_ADDRESSES]
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    _write_public(materials.ca_bundle, ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_public(materials.cert_file, server_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        materials.key_file,
        server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()),
    )


def _generate_with_openssl(materials: TlsMaterials, common_name: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("TLS needs python3-cryptography or the openssl command line tool")
    directory = materials.directory
    ca_key = os.path.join(directory, "ca.key")  # deleted below, once the server cert is signed
    csr = os.path.join(directory, "server.csr")
    extensions = os.path.join(directory, "server.ext")
    alt_names = [f"DNS:{name}" for name in SERVER_NAMES] + [f"IP:{address}" for address in SERVER_ADDRESSES]
    _write_public(extensions, (
        "basicConstraints=critical,CA:FALSE\n"
        f"subjectAltName={','.join(alt_names)}\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\n"
    ).encode())

    def run(*args: str) -> None:
        # Only paths and public parameters in argv; os.umask keeps the key files private.
        subprocess.run([openssl, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    old_umask = os.umask(0o077)
    try:
        run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", ca_key)
        run("req", "-x509", "-new", "-key", ca_key, "-sha256", "-days", str(VALIDITY_DAYS),
            "-subj", f"/CN={common_name} CA",
            "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            "-out", materials.ca_bundle)
        run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", materials.key_file)
        run("req", "-new", "-key", materials.key_file, "-subj", "/CN=127.0.0.1", "-out", csr)
        run("x509", "-req", "-in", csr, "-CA", materials.ca_bundle, "-CAkey", ca_key, "-CAcreateserial",
            "-days", str(VALIDITY_DAYS), "-sha256", "-extfile", extensions, "-out", materials.cert_file)
    finally:
        os.umask(old_umask)
        for leftover in (ca_key, csr, extensions, os.path.join(directory, "ca.srl")):
            if os.path.exists(leftover):
                os.remove(leftover)
    os.chmod(materials.ca_bundle, 0o644)
    os.chmod(materials.cert_file, 0o644)
