"""wsinspect's own certificate authority, for forward mode's TLS interception.

``proxy --forward`` terminates a client's TLS with a certificate for the host the client asked
for, signed by this CA; the client accepts it once the user has added the CA's certificate to
its trust store (``wsinspect ca`` prints how). No I/O but the CA's files and short-lived private
temp files: the relay asks ``server_context(host)`` and wraps its streams itself.

Files in the CA directory (``default_ca_dir``, 0700):

- ``wsinspect-ca-key.pem`` (0600): the private key *and* the certificate. The pair lives in one
  file so that it is committed by one atomic link or rename: two processes creating the CA at
  once can never leave a key beside another process's certificate.
- ``wsinspect-ca.pem`` and ``wsinspect-ca.cer``: the certificate alone, PEM and DER, for trust
  stores. Public copies of the key file's certificate, rewritten from it when missing or stale.

Key type, measured here (Python 3.11, OpenSSL 3.0, cryptography 42+): EC P-256. Generating it
takes ~35 µs against ~40 ms for RSA-2048; signing a leaf and each handshake's signature are
cheaper; certificates are smaller. Chromium (BoringSSL), Python's ssl and Node (OpenSSL), curl
(with any TLS backend) and every current OS store accept ECDSA P-256 roots and leaves.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import getpass
import hashlib
import ipaddress
import os
import platform
import secrets
import shlex
import shutil
import ssl
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wsinspect.settings import ConfigError

__all__ = ["CertificateAuthority", "default_ca_dir", "trust_instructions"]

CERT_NAME = "wsinspect-ca.pem"
DER_NAME = "wsinspect-ca.cer"
KEY_NAME = "wsinspect-ca-key.pem"
CA_DAYS = 3650
LEAF_DAYS = 397  # Apple's and Chrome's limit for a leaf's whole validity (398), less a margin
BACKDATE = datetime.timedelta(days=1)  # clients whose clock is a little behind still accept it
LEAF_CACHE_SIZE = 1024
_REGENERATE = "run 'wsinspect ca --regenerate' to make a new CA"


def default_ca_dir(explicit: str | None = None) -> Path:
    """Where the CA lives: ``explicit`` (``--ca-dir``), else ``$WSINSPECT_CA_DIR``, else
    ``~/.wsinspect/``. ``~`` is expanded in the first two."""
    chosen = explicit or os.environ.get("WSINSPECT_CA_DIR")
    return Path(chosen).expanduser() if chosen else Path.home() / ".wsinspect"


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _key_usage(*allowed: str) -> x509.KeyUsage:
    flags = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{flag: flag in allowed for flag in flags})


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _owner() -> str:
    """``user@host``, so that the CAs of two machines (or users) can be told apart in a store."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in the environment or the password database
        user = "unknown"
    return f"{user}@{platform.node() or 'localhost'}"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _build_ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = _now()
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wsinspect"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"created {now:%Y-%m-%d %H:%M:%S} UTC"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"wsinspect CA {_owner()}"[:64]),
    ])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage("key_cert_sign", "crl_sign"), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
        .sign(key, hashes.SHA256())
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _key_file_bytes(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> bytes:
    return _pem_key(key) + cert.public_bytes(serialization.Encoding.PEM)


def _commit_key_file(directory: Path, data: bytes, *, exclusive: bool) -> None:
    """Put ``data`` in place as the key file, atomically: written to a temp file created 0600
    (never widened or chmod-ed afterwards) and flushed, then linked into place when
    ``exclusive`` (a CA another process committed first stays) or renamed over the old one."""
    tmp = directory / f".{KEY_NAME}.{secrets.token_hex(8)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            try:
                os.link(tmp, directory / KEY_NAME)
                return
            except FileExistsError:
                return
            except OSError:  # no hard links on this file system: the last writer wins
                pass
        os.replace(tmp, directory / KEY_NAME)
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot write the CA there: {_why(exc)}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _replace_public(path: Path, data: bytes) -> None:
    """Write a public file atomically (temp file, then rename over ``path``)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _not_a_directory(directory: Path) -> ConfigError:
    return ConfigError(f"{directory}: not a directory (the CA directory; choose another with "
                       "--ca-dir or WSINSPECT_CA_DIR)")


def _ensure_dir(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise _not_a_directory(directory) from None
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot create the CA directory: "
                          f"{_why(exc)}") from None


class CertificateAuthority:
    """A loaded CA: its certificate, its key, and the leaf contexts it has issued.

    Make one with ``load_or_create`` or ``regenerate``. ``repr`` never shows the key.
    """

    def __init__(self, directory: Path, key: ec.EllipticCurvePrivateKey,
                 certificate: x509.Certificate) -> None:
        self.directory = directory
        self.certificate = certificate
        self._key = key
        # One leaf key for every host, made once per CA object and kept in memory (it is on
        # disk only for the moment load_cert_chain reads it): per-host keys would add work
        # (~35 µs each for P-256, ~40 ms for RSA-2048) and no safety, since what clients trust
        # is the CA's key.
        self._leaf_key = _new_key()
        self._leaf_key_pem = _pem_key(self._leaf_key)
        self._contexts: OrderedDict[str, ssl.SSLContext] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<CertificateAuthority {self.cert_path} sha256={self.fingerprint_sha256}>"

    # ---- the files --------------------------------------------------------------------------

    @classmethod
    def load_or_create(cls, directory: str | os.PathLike[str]) -> CertificateAuthority:
        """The CA in ``directory``, made (with the directory, 0700) if there is none.

        Safe against another process doing the same at once: the first key file linked into
        place wins and the other process uses it. A damaged, unreadable or expired CA is a
        ``ConfigError`` naming the file.
        """
        directory = Path(directory)
        _ensure_dir(directory)
        found = cls.load(directory)
        if found is not None:
            return found
        key = _new_key()
        _commit_key_file(directory, _key_file_bytes(key, _build_ca_certificate(key)),
                         exclusive=True)
        found = cls.load(directory)  # ours, or the one another process committed first
        if found is None:
            raise ConfigError(f"{directory / KEY_NAME}: vanished while the CA was being made")
        return found

    @classmethod
    def regenerate(cls, directory: str | os.PathLike[str]) -> CertificateAuthority:
        """A new CA in ``directory``, replacing the files of the old one (if any)."""
        directory = Path(directory)
        _ensure_dir(directory)
        key = _new_key()
        _commit_key_file(directory, _key_file_bytes(key, _build_ca_certificate(key)),
                         exclusive=False)
        for stale in (CERT_NAME, DER_NAME):  # even a damaged one: ``load`` writes them anew
            with contextlib.suppress(OSError):
                (directory / stale).unlink()
        found = cls.load(directory)
        assert found is not None
        return found

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> CertificateAuthority | None:
        """The CA in ``directory``, or ``None`` when there is no key file. Writes the public
        copies (``.pem``, ``.cer``) when they are missing or are not the key file's certificate.
        """
        directory = Path(directory)
        key_path = directory / KEY_NAME
        try:
            data = key_path.read_bytes()
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            raise _not_a_directory(directory) from None
        except OSError as exc:
            raise ConfigError(f"{key_path}: cannot read the CA key: {_why(exc)}; "
                              f"{_REGENERATE}") from None
        key: object = None
        cert: x509.Certificate | None = None
        try:
            key = serialization.load_pem_private_key(data, password=None)
            cert = x509.load_pem_x509_certificate(data[data.index(b"-----BEGIN CERTIFICATE"):])
        except (ValueError, TypeError):
            pass
        if not isinstance(key, ec.EllipticCurvePrivateKey) or cert is None or (
            cert.public_key() != key.public_key()
        ):
            raise ConfigError(f"{key_path}: not a wsinspect CA key and certificate (damaged?); "
                              f"{_REGENERATE}")
        if cert.not_valid_after_utc <= _now():
            raise ConfigError(f"{key_path}: the CA expired on "
                              f"{cert.not_valid_after_utc:%Y-%m-%d}; {_REGENERATE}")
        ca = cls(directory, key, cert)
        ca._write_public_copies()
        return ca

    def _write_public_copies(self) -> None:
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        for path, want in ((self.cert_path, self.cert_pem), (self.der_path, der)):
            try:
                have = path.read_bytes()
            except FileNotFoundError:
                have = None
            except OSError as exc:
                raise ConfigError(f"{path}: cannot read the CA certificate: "
                                  f"{_why(exc)}; {_REGENERATE}") from None
            if have == want:
                continue
            if have is not None and path == self.cert_path:
                try:
                    x509.load_pem_x509_certificate(have)
                except ValueError:
                    raise ConfigError(f"{path}: not a PEM certificate (damaged?); "
                                      f"{_REGENERATE}") from None
            try:  # missing, or another (older) CA's: the key file is the CA
                _replace_public(path, want)
            except OSError as exc:
                raise ConfigError(f"{path}: cannot write the CA certificate: "
                                  f"{_why(exc)}") from None

    @property
    def cert_path(self) -> Path:
        """The certificate as PEM: the file users import into trust stores."""
        return self.directory / CERT_NAME

    @property
    def der_path(self) -> Path:
        """The certificate as DER (``.cer``), which Windows and Android import."""
        return self.directory / DER_NAME

    @property
    def key_path(self) -> Path:
        return self.directory / KEY_NAME

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def not_after(self) -> datetime.datetime:
        return self.certificate.not_valid_after_utc

    @property
    def fingerprint_sha256(self) -> str:
        """SHA-256 of the certificate, ``AB:CD:...`` as browsers and ``openssl x509`` show it."""
        return self.certificate.fingerprint(hashes.SHA256()).hex(":").upper()

    @property
    def spki_sha256_base64(self) -> str:
        """Base64 of the SHA-256 of the CA's SubjectPublicKeyInfo: the value Chromium's
        ``--ignore-certificate-errors-spki-list`` takes."""
        spki = self.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")

    # ---- leaves -----------------------------------------------------------------------------

    def issue_leaf(self, host: str) -> x509.Certificate:
        """A server certificate for ``host`` (a DNS name, or an IPv4/IPv6 literal, brackets
        allowed), signed by this CA, valid 397 days from yesterday (never past the CA)."""
        host = _normal_host(host)
        try:
            san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            san = x509.DNSName(host)
        now = _now()
        public = self._leaf_key.public_key()
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])]))
            .issuer_name(self.certificate.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(min(now - BACKDATE + datetime.timedelta(days=LEAF_DAYS),
                                 self.not_after))
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            # an EC key signs (ECDHE); keyEncipherment is only for RSA key exchange
            .add_extension(_key_usage("digital_signature"), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )

    def server_context(self, host: str) -> ssl.SSLContext:
        """A server-side context presenting a leaf for ``host`` (chain: leaf, CA), TLS 1.2+,
        ALPN ``http/1.1`` only. Cached per host (the last ``LEAF_CACHE_SIZE`` hosts).

        Measured cost of a new host (Python 3.11, OpenSSL 3.0): 1.3-2 ms: issuing the leaf
        ~0.25 ms, a new SSLContext 0.1-0.3 ms, the temp files ~0.2 ms, ``load_cert_chain``
        0.8-1.2 ms (OpenSSL 3's PEM decoders). A cached host: ~4 µs. Thread-safe, so it may
        also run in a worker thread. ``ValueError`` for a host that is no DNS name or IP literal
        (an SNI name with spaces, say).
        """
        key = _normal_host(host)
        with self._lock:
            context = self._contexts.get(key)
            if context is not None:
                self._contexts.move_to_end(key)
                return context
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        chain = self.issue_leaf(key).public_bytes(serialization.Encoding.PEM) + self.cert_pem
        _load_chain(context, chain, self._leaf_key_pem)
        with self._lock:
            self._contexts[key] = context
            self._contexts.move_to_end(key)
            while len(self._contexts) > LEAF_CACHE_SIZE:
                self._contexts.popitem(last=False)
        return context


def _normal_host(host: str) -> str:
    """``host`` as a certificate names it: no brackets, no trailing dot, lower case, IDNA
    A-labels; an IP literal in its compressed form."""
    name = host.strip().removeprefix("[").removesuffix("]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"not a host name: {host!r}") from None
    if not name or len(name) > 253 or any(c in name for c in " /\\@:\x00"):
        raise ValueError(f"not a host name: {host!r}")
    return name


def _load_chain(context: ssl.SSLContext, chain: bytes, key_pem: bytes) -> None:
    """Python's ssl loads a certificate chain only from files (3.11-3.13: no in-memory form):
    write chain and key to a 0600 file in a fresh 0700 directory, load, remove at once."""
    directory = tempfile.mkdtemp(prefix="wsinspect-leaf-")  # 0700
    try:
        path = os.path.join(directory, "leaf.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(chain + key_pem)
        context.load_cert_chain(path)  # the key is taken from the same file
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def trust_instructions(ca: CertificateAuthority) -> str:
    """What ``wsinspect ca`` prints: the certificate, and how to make each client trust it."""
    pem = shlex.quote(str(ca.cert_path))
    der = str(ca.der_path)
    nss = "certutil -d sql:$HOME/.pki/nssdb"
    return f"""\
wsinspect's certificate authority (CA)
  certificate  {ca.cert_path}
               (DER copy for Windows and Android: {der})
  SHA-256      {ca.fingerprint_sha256}
  expires      {ca.not_after:%Y-%m-%d} (UTC)
  subject      {ca.certificate.subject.rfc4514_string()}

'wsinspect proxy --forward' shows the traffic inside HTTPS and wss:// connections by answering
each client with a certificate for the host it asked for, signed by this CA. A client accepts
it only once it trusts the CA. Trust it in the clients you debug, and nowhere else:

Chrome / Chromium on Linux (the NSS database; certutil is in libnss3-tools / nss-tools):
  mkdir -p ~/.pki/nssdb    # only if Chrome has never run
  {nss} -A -t C,, -n wsinspect -i {pem}
  then restart the browser. For a throwaway profile, instead:
  chromium --proxy-server=127.0.0.1:8080 --ignore-certificate-errors-spki-list={ca.spki_sha256_base64}
Firefox (its own store): Settings → Privacy & Security → Certificates → View Certificates →
  Authorities → Import → {ca.cert_path}, tick "Trust this CA to identify websites";
  or a policy (policies.json): {{"policies": {{"Certificates": {{"Install": ["{ca.cert_path}"]}}}}}}
curl:
  curl --proxy http://127.0.0.1:8080 --cacert {pem} https://example.com/
Python (ssl, websockets, aiohttp, httpx; the file replaces the default CA bundle):
  SSL_CERT_FILE={pem} python app.py
  requests: REQUESTS_CA_BUNDLE={pem} python app.py
Node.js (added to Node's own CA list):
  NODE_EXTRA_CA_CERTS={pem} node app.js
The system store (most programs on the machine):
  Debian/Ubuntu: sudo cp {pem} /usr/local/share/ca-certificates/wsinspect.crt && sudo update-ca-certificates
  Fedora/RHEL:   sudo cp {pem} /etc/pki/ca-trust/source/anchors/wsinspect.pem && sudo update-ca-trust
  macOS:         sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {pem}
  Windows (an administrator's prompt): certutil -addstore -f root "{der}"

When you are done, remove it from every store you added it to: {nss} -D -n wsinspect;
  delete the .crt and run 'sudo update-ca-certificates --fresh' (or update-ca-trust);
  Keychain Access on macOS; certmgr.msc → Trusted Root Certification Authorities on Windows.
Anyone who has the CA's key ({ca.key_path}) can impersonate any web site
to a machine or browser that trusts this CA: keep the key private, never copy or commit it.
"""
