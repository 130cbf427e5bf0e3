"""wsinspect's certificate authority: its files, its certificate, and the leaves it issues, as
real TLS clients see them (Python's ssl with default and strict verification, ``openssl
verify``, Node and curl when they are installed). Every CA lives in ``tmp_path``; ``HOME`` and
``WSINSPECT_CA_DIR`` point there too, so the user's ~/.wsinspect is never touched."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import wsinspect.ca as ca_module
from wsinspect.ca import CertificateAuthority, default_ca_dir
from wsinspect.settings import ConfigError

POSIX = os.name == "posix"


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WSINSPECT_CA_DIR", raising=False)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    return tmp_path / "ca"


@pytest.fixture
def ca(ca_dir: Path) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(ca_dir)


E = TypeVar("E", bound=x509.ExtensionType)


def ext(cert: x509.Certificate, kind: type[E]) -> x509.Extension[E]:
    return cert.extensions.get_extension_for_class(kind)


# ---- where the CA lives -------------------------------------------------------------------------


def test_explicit_dir_wins_over_the_environment_and_home(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSINSPECT_CA_DIR", str(tmp_path / "env"))
    assert default_ca_dir(str(tmp_path / "flag")) == tmp_path / "flag"
    assert default_ca_dir() == tmp_path / "env"
    monkeypatch.delenv("WSINSPECT_CA_DIR")
    assert default_ca_dir() == tmp_path / "home" / ".wsinspect"
    assert default_ca_dir("~/x") == tmp_path / "home" / "x"


def test_the_ca_is_made_where_the_environment_says(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSINSPECT_CA_DIR", str(tmp_path / "env"))
    ca = CertificateAuthority.load_or_create(default_ca_dir())
    assert ca.cert_path == tmp_path / "env" / "wsinspect-ca.pem"
    assert ca.cert_path.read_bytes() == ca.cert_pem
    assert not (tmp_path / "home").exists()


# ---- the files ----------------------------------------------------------------------------------


@pytest.mark.skipif(not POSIX, reason="POSIX file modes")
def test_key_is_0600_and_dir_0700_whatever_the_umask(ca_dir: Path) -> None:
    old = os.umask(0)  # a key written with the default mode would come out 0666
    try:
        ca = CertificateAuthority.load_or_create(ca_dir)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(ca_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(ca.key_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(ca.cert_path).st_mode) & 0o044  # the certificate is public


def test_files_hold_the_certificate_as_pem_and_der_and_nothing_else(ca: CertificateAuthority,
                                                                    ca_dir: Path) -> None:
    assert sorted(p.name for p in ca_dir.iterdir()) == [
        "wsinspect-ca-key.pem", "wsinspect-ca.cer", "wsinspect-ca.pem"]  # no temp files left
    assert x509.load_pem_x509_certificate(ca.cert_path.read_bytes()) == ca.certificate
    assert x509.load_der_x509_certificate(ca.der_path.read_bytes()) == ca.certificate
    assert b"PRIVATE KEY" not in ca.cert_path.read_bytes()
    key = serialization.load_pem_private_key(ca.key_path.read_bytes(), password=None)
    assert key.public_key() == ca.certificate.public_key()


def test_a_second_load_is_the_same_ca(ca: CertificateAuthority, ca_dir: Path) -> None:
    again = CertificateAuthority.load_or_create(ca_dir)
    assert again.fingerprint_sha256 == ca.fingerprint_sha256
    assert again.spki_sha256_base64 == ca.spki_sha256_base64


def test_regenerate_makes_another_ca_in_the_same_files(ca: CertificateAuthority,
                                                       ca_dir: Path) -> None:
    new = CertificateAuthority.regenerate(ca_dir)
    assert new.fingerprint_sha256 != ca.fingerprint_sha256
    assert new.spki_sha256_base64 != ca.spki_sha256_base64
    assert new.cert_path == ca.cert_path and new.cert_path.read_bytes() == new.cert_pem
    assert CertificateAuthority.load_or_create(ca_dir).fingerprint_sha256 == new.fingerprint_sha256


def test_a_ca_made_meanwhile_by_another_process_wins(ca_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The race: while this process builds its CA, another one commits a CA of its own. This
    process must end up with the other's CA, and the files must hold one matching pair."""
    build = ca_module._build_ca_certificate
    others: list[CertificateAuthority] = []

    def build_while_another_process_wins(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
        if not others:
            code = ("import sys; from wsinspect.ca import CertificateAuthority as C; "
                    "print(C.load_or_create(sys.argv[1]).fingerprint_sha256)")
            subprocess.run([sys.executable, "-c", code, str(ca_dir)], check=True)
            other = CertificateAuthority.load(ca_dir)
            assert other is not None
            others.append(other)
        return build(key)

    monkeypatch.setattr(ca_module, "_build_ca_certificate", build_while_another_process_wins)
    ca = CertificateAuthority.load_or_create(ca_dir)
    assert ca.fingerprint_sha256 == others[0].fingerprint_sha256
    monkeypatch.undo()
    again = CertificateAuthority.load_or_create(ca_dir)
    assert again.fingerprint_sha256 == ca.fingerprint_sha256
    assert x509.load_pem_x509_certificate(ca.cert_path.read_bytes()) == ca.certificate
    assert [p.name for p in ca_dir.iterdir() if p.name.endswith(".tmp")] == []


def test_processes_creating_the_ca_at_once_agree(ca_dir: Path) -> None:
    code = ("import sys; from wsinspect.ca import CertificateAuthority as C; "
            "print(C.load_or_create(sys.argv[1]).fingerprint_sha256)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(ca_dir)], stdout=subprocess.PIPE,
                              text=True) for _ in range(6)]
    prints = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert prints == {CertificateAuthority.load_or_create(ca_dir).fingerprint_sha256}


def test_without_hard_links_the_ca_is_still_made(ca_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: object, dst: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    ca = CertificateAuthority.load_or_create(ca_dir)
    assert CertificateAuthority.load_or_create(ca_dir).fingerprint_sha256 == ca.fingerprint_sha256
    assert sorted(p.name for p in ca_dir.iterdir())[0] == "wsinspect-ca-key.pem"


def test_a_stale_public_copy_is_rewritten_from_the_key_file(ca: CertificateAuthority,
                                                            tmp_path: Path) -> None:
    other = CertificateAuthority.load_or_create(tmp_path / "other")
    ca.cert_path.write_bytes(other.cert_pem)
    ca.der_path.unlink()
    again = CertificateAuthority.load_or_create(ca.directory)
    assert again.fingerprint_sha256 == ca.fingerprint_sha256
    assert ca.cert_path.read_bytes() == ca.cert_pem and ca.der_path.exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "no certificate", "other key"])
def test_a_damaged_key_file_is_a_config_error_naming_it(ca: CertificateAuthority, tmp_path: Path,
                                                        damage: str) -> None:
    data = ca.key_path.read_bytes()
    if damage == "garbage":
        data = b"not a key\n"
    elif damage == "truncated":
        data = data[: len(data) // 3]
    elif damage == "no certificate":
        data = data[: data.index(b"-----BEGIN CERTIFICATE")]
    else:  # this CA's certificate beside another CA's key
        other = CertificateAuthority.load_or_create(tmp_path / "other").key_path.read_bytes()
        data = other[: other.index(b"-----BEGIN CERTIFICATE")] + ca.cert_pem
    ca.key_path.write_bytes(data)
    with pytest.raises(ConfigError) as info:
        CertificateAuthority.load_or_create(ca.directory)
    message = str(info.value)
    assert str(ca.key_path) in message and "wsinspect ca --regenerate" in message
    assert "\n" not in message
    assert CertificateAuthority.regenerate(ca.directory).key_path == ca.key_path  # the way out


def test_a_damaged_certificate_is_a_config_error_naming_it(ca: CertificateAuthority) -> None:
    ca.cert_path.write_bytes(b"-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match=r"wsinspect-ca\.pem.*wsinspect ca --regenerate"):
        CertificateAuthority.load_or_create(ca.directory)
    assert CertificateAuthority.regenerate(ca.directory).cert_path.read_bytes().startswith(
        b"-----BEGIN CERTIFICATE-----")  # the way out


@pytest.mark.skipif(not POSIX or os.geteuid() == 0, reason="POSIX permissions, not as root")
def test_an_unreadable_key_is_a_config_error(ca: CertificateAuthority) -> None:
    ca.key_path.chmod(0)
    with pytest.raises(ConfigError, match=r"wsinspect-ca-key\.pem: cannot read"):
        CertificateAuthority.load_or_create(ca.directory)


def test_an_expired_ca_is_a_config_error(ca_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    then = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=4000)
    monkeypatch.setattr(ca_module, "_now", lambda: then)
    CertificateAuthority.regenerate(ca_dir)  # made 4000 days ago, valid for 3650
    monkeypatch.undo()
    with pytest.raises(ConfigError, match=r"wsinspect-ca-key\.pem: the CA expired on .*--regenerate"):
        CertificateAuthority.load_or_create(ca_dir)


def test_a_file_in_the_way_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"file: not a directory"):
        CertificateAuthority.load_or_create(tmp_path / "file")
    with pytest.raises(ConfigError, match=r"file/sub: cannot create"):
        CertificateAuthority.load_or_create(tmp_path / "file" / "sub")


def test_repr_shows_no_key(ca: CertificateAuthority) -> None:
    assert "PRIVATE" not in repr(ca) and ca.fingerprint_sha256 in repr(ca)


# ---- the CA certificate -------------------------------------------------------------------------


def test_ca_certificate_has_the_promised_extensions(ca: CertificateAuthority) -> None:
    cert = ca.certificate
    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature
    ski = ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.subject == cert.issuer
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert isinstance(cn, str) and cn.startswith("wsinspect CA ") and "@" in cn
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "wsinspect"
    now = datetime.datetime.now(datetime.UTC)
    assert now - datetime.timedelta(days=2) < cert.not_valid_before_utc < now
    assert 3640 < (ca.not_after - now).days <= 3650
    assert ca.fingerprint_sha256 == cert.fingerprint(hashes.SHA256()).hex(":").upper()


def test_spki_hash_is_what_openssl_computes(ca: CertificateAuthority) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl")
    pub = subprocess.run([openssl, "x509", "-in", str(ca.cert_path), "-pubkey", "-noout"],
                         capture_output=True, check=True).stdout
    der = subprocess.run([openssl, "pkey", "-pubin", "-outform", "der"], input=pub,
                         capture_output=True, check=True).stdout
    digest = subprocess.run([openssl, "dgst", "-sha256", "-binary"], input=der,
                            capture_output=True, check=True).stdout
    import base64

    assert ca.spki_sha256_base64 == base64.b64encode(digest).decode()


# ---- leaves -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "san"), [
    ("example.test", x509.DNSName("example.test")),
    ("EXAMPLE.test.", x509.DNSName("example.test")),
    ("127.0.0.1", x509.IPAddress(ipaddress.ip_address("127.0.0.1"))),
    ("[::1]", x509.IPAddress(ipaddress.ip_address("::1"))),
    ("bücher.test", x509.DNSName("xn--bcher-kva.test")),
])
def test_leaf_names_the_host(ca: CertificateAuthority, host: str, san: x509.GeneralName) -> None:
    leaf = ca.issue_leaf(host)
    assert list(ext(leaf, x509.SubjectAlternativeName).value) == [san]


def test_leaf_has_the_promised_extensions(ca: CertificateAuthority) -> None:
    host = "a" * 60 + ".example.test"
    leaf = ca.issue_leaf(host)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == host[:64]
    assert leaf.issuer == ca.certificate.subject
    bc = ext(leaf, x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = ext(leaf, x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign
    assert list(ext(leaf, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    aki = ext(leaf, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ext(ca.certificate, x509.SubjectKeyIdentifier).value.digest
    assert ext(leaf, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        leaf.public_key())
    now = datetime.datetime.now(datetime.UTC)
    assert leaf.not_valid_before_utc < now - datetime.timedelta(hours=23)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= datetime.timedelta(days=397)
    leaf.verify_directly_issued_by(ca.certificate)


def test_leaves_share_one_key_but_not_a_serial(ca: CertificateAuthority) -> None:
    a, b = ca.issue_leaf("a.test"), ca.issue_leaf("b.test")
    assert a.public_key() == b.public_key() and a.serial_number != b.serial_number


@pytest.mark.parametrize("host", ["", "a b.test", "user@host", "x" * 300])
def test_a_host_that_cannot_be_named_is_a_value_error(ca: CertificateAuthority, host: str) -> None:
    with pytest.raises(ValueError):
        ca.server_context(host)


# ---- real handshakes ----------------------------------------------------------------------------


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, name: str) -> ssl.SSLObject:
    """Both sides of a TLS handshake over memory BIOs; the client's object when it succeeds."""
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    s = server.wrap_bio(s_in, s_out, server_side=True)
    c = client.wrap_bio(c_in, c_out, server_hostname=name)
    done = {"c": False, "s": False}
    for _ in range(20):
        for side, obj in (("c", c), ("s", s)):
            if not done[side]:
                try:
                    obj.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return c
    raise AssertionError("the handshake did not finish")


def client_trusting(ca: CertificateAuthority, *, strict: bool = False) -> ssl.SSLContext:
    client = ssl.create_default_context(cafile=str(ca.cert_path))
    client.set_alpn_protocols(["h2", "http/1.1"])
    if strict:  # Python 3.13's defaults, whatever this Python's are
        client.verify_flags |= ssl.VERIFY_X509_STRICT | getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0)
    return client


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
@pytest.mark.parametrize("host", ["example.test", "127.0.0.1", "::1"])
def test_a_client_trusting_only_the_ca_accepts_the_leaf(ca: CertificateAuthority, host: str,
                                                        strict: bool) -> None:
    client = handshake(ca.server_context(host), client_trusting(ca, strict=strict), host)
    assert client.selected_alpn_protocol() == "http/1.1"  # h2 offered, never chosen
    assert client.version() in ("TLSv1.2", "TLSv1.3")
    chain = client.getpeercert(binary_form=True)
    assert chain is not None and x509.load_der_x509_certificate(chain).issuer == ca.certificate.subject


@pytest.mark.parametrize(("leaf_for", "asked"), [("example.test", "other.test"),
                                                 ("example.test", "sub.example.test"),
                                                 ("127.0.0.1", "127.0.0.2"),
                                                 ("::1", "::2")])
def test_a_leaf_for_another_host_is_refused(ca: CertificateAuthority, leaf_for: str,
                                            asked: str) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        handshake(ca.server_context(leaf_for), client_trusting(ca), asked)


def test_a_client_that_does_not_trust_the_ca_refuses_it(ca: CertificateAuthority,
                                                        tmp_path: Path) -> None:
    other = CertificateAuthority.load_or_create(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        handshake(ca.server_context("example.test"), client_trusting(other), "example.test")


def test_server_context_is_tls12_or_later(ca: CertificateAuthority) -> None:
    context = ca.server_context("example.test")
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.protocol == ssl.PROTOCOL_TLS_SERVER


def test_openssl_verifies_the_leaf_strictly(ca: CertificateAuthority, tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl")
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(ca.issue_leaf("example.test").public_bytes(serialization.Encoding.PEM))
    base = [openssl, "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", str(ca.cert_path)]
    ok = subprocess.run([*base, "-verify_hostname", "example.test", str(leaf)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    wrong = subprocess.run([*base, "-verify_hostname", "other.test", str(leaf)],
                           capture_output=True, text=True)
    assert wrong.returncode != 0


# ---- the context cache --------------------------------------------------------------------------


def test_the_same_host_gets_the_same_context(ca: CertificateAuthority) -> None:
    context = ca.server_context("example.test")
    assert ca.server_context("example.test") is context
    assert ca.server_context("Example.TEST.") is context
    assert ca.server_context("other.test") is not context


def test_the_cache_is_bounded_and_keeps_the_recently_used(ca: CertificateAuthority,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ca_module, "LEAF_CACHE_SIZE", 3)
    first = {h: ca.server_context(h) for h in ("a.test", "b.test", "c.test")}
    ca.server_context("a.test")  # used again: b.test is now the oldest
    ca.server_context("d.test")
    assert len(ca._contexts) == 3
    assert ca.server_context("a.test") is first["a.test"]
    assert ca.server_context("c.test") is first["c.test"]
    assert ca.server_context("b.test") is not first["b.test"]  # evicted, made again


def test_the_leaf_files_are_gone_once_loaded(ca: CertificateAuthority, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    ca.server_context("example.test")
    assert list(temp.iterdir()) == []


# ---- other clients: Chromium, Node and curl, over loopback --------------------------------------


@pytest.fixture
def https_server(ca: CertificateAuthority) -> Iterator[int]:
    """A one-page HTTPS server on 127.0.0.1 presenting wsinspect's leaf for ``example.test``."""
    listener = socket.create_server(("127.0.0.1", 0))
    context = ca.server_context("example.test")
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(10)
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(65536)
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                b"Content-Length: 12\r\nConnection: close\r\n\r\nwsinspect-ok")
            except (OSError, ssl.SSLError):
                conn.close()  # a client that refused the certificate

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_curl_trusts_the_leaf_with_cacert(ca: CertificateAuthority, https_server: int) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("no curl")
    url = f"https://example.test:{https_server}/"
    resolve = f"example.test:{https_server}:127.0.0.1"
    base = [curl, "-sS", "--noproxy", "*", "--max-time", "10", "--resolve", resolve]
    ok = subprocess.run([*base, "--cacert", str(ca.cert_path), url], capture_output=True, text=True)
    assert (ok.returncode, ok.stdout) == (0, "wsinspect-ok"), ok.stderr
    refused = subprocess.run([*base, url], capture_output=True, text=True)
    assert refused.returncode == 60  # CURLE_PEER_FAILED_VERIFICATION


def test_node_trusts_the_leaf_with_node_extra_ca_certs(ca: CertificateAuthority,
                                                       https_server: int) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node")
    script = (
        "const tls = require('tls');"
        f"const s = tls.connect({{host: '127.0.0.1', port: {https_server},"
        " servername: 'example.test', ALPNProtocols: ['h2', 'http/1.1']}, () => {"
        " console.log(s.authorized, s.alpnProtocol); s.end(); });"
        "s.on('error', e => { console.log('error', e.code); });"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NODE_")}
    ok = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30,
                        env={**env, "NODE_EXTRA_CA_CERTS": str(ca.cert_path)})
    assert ok.stdout.strip() == "true http/1.1", ok.stderr
    refused = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30,
                             env=env)
    assert refused.stdout.startswith("error"), refused.stdout + refused.stderr


def test_chromium_trusts_the_leaf_once_the_ca_is_in_its_nss_database(
    ca: CertificateAuthority, https_server: int, tmp_path: Path,
) -> None:
    """The ``certutil`` line ``wsinspect ca`` prints, then headless Chromium loads a page."""
    chromium = os.environ.get("WSINSPECT_CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")
    certutil = shutil.which("certutil")
    if chromium is None or certutil is None or not POSIX:
        pytest.skip("needs chromium and NSS's certutil (apt-get install chromium libnss3-tools)")

    def load(home: Path) -> str:
        out = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={home / 'profile'}",
             "--host-resolver-rules=MAP example.test 127.0.0.1",
             "--dump-dom", f"https://example.test:{https_server}/"],
            capture_output=True, text=True, timeout=90, env={**os.environ, "HOME": str(home)})
        return out.stdout

    trusting, plain = tmp_path / "trusting", tmp_path / "plain"
    (trusting / ".pki" / "nssdb").mkdir(parents=True)
    subprocess.run([certutil, "-d", f"sql:{trusting}/.pki/nssdb", "-A", "-t", "C,,",
                    "-n", "wsinspect", "-i", str(ca.cert_path)], check=True, capture_output=True)
    (plain / ".pki" / "nssdb").mkdir(parents=True)
    assert "wsinspect-ok" in load(trusting)
    assert "wsinspect-ok" not in load(plain)
