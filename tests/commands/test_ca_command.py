"""``wsinspect ca``: where the CA is, how to trust it, and a new one on request. Run through the
CLI entry point; every CA lives in ``tmp_path`` (``HOME`` too, so ~/.wsinspect is never touched)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wsinspect.ca import CertificateAuthority
from wsinspect.cli import main


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WSINSPECT_CA_DIR", raising=False)


def fingerprint(text: str) -> str:
    match = re.search(r"SHA-256\s+((?:[0-9A-F]{2}:){31}[0-9A-F]{2})", text)
    assert match, text
    return match[1]


def test_path_prints_only_the_certificate_path(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ca", "--ca-dir", str(tmp_path / "d"), "--path"]) == 0
    out = capsys.readouterr().out
    assert out == f"{tmp_path / 'd' / 'wsinspect-ca.pem'}\n"
    assert Path(out.strip()).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")


def test_without_ca_dir_the_environment_then_home_decide(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ca", "--path"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "home" / ".wsinspect" / "wsinspect-ca.pem")
    monkeypatch.setenv("WSINSPECT_CA_DIR", str(tmp_path / "env"))
    assert main(["ca", "--path"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "env" / "wsinspect-ca.pem")


def test_plain_prints_how_to_trust_the_ca(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ca", "--ca-dir", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    ca = CertificateAuthority.load_or_create(tmp_path / "d")
    assert str(ca.cert_path) in out
    assert fingerprint(out) == ca.fingerprint_sha256
    assert f"{ca.not_after:%Y-%m-%d}" in out
    for needle in ("certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n wsinspect -i",
                   "NODE_EXTRA_CA_CERTS=", "SSL_CERT_FILE=", "REQUESTS_CA_BUNDLE=",
                   "--cacert", "update-ca-certificates", "security add-trusted-cert",
                   "certutil -addstore", "Firefox", ca.spki_sha256_base64, "remove it"):
        assert needle in out, needle
    assert "PRIVATE KEY" not in out


def test_a_second_run_shows_the_same_ca(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["ca", "--ca-dir", str(tmp_path / "d")]
    assert main(argv) == 0
    first = fingerprint(capsys.readouterr().out)
    assert main(argv) == 0
    assert fingerprint(capsys.readouterr().out) == first


def test_regenerate_makes_a_new_ca_and_says_to_remove_the_old(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["ca", "--ca-dir", str(tmp_path / "d")]
    assert main(argv) == 0
    old = fingerprint(capsys.readouterr().out)
    assert main([*argv, "--regenerate"]) == 0
    out = capsys.readouterr().out
    assert f"Remove the old one (SHA-256 {old})" in out
    new = fingerprint(out.split("wsinspect's certificate authority", 1)[1])
    assert new != old
    assert CertificateAuthority.load_or_create(tmp_path / "d").fingerprint_sha256 == new


def test_regenerate_replaces_a_damaged_ca(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["ca", "--ca-dir", str(tmp_path / "d")]
    assert main(argv) == 0
    (tmp_path / "d" / "wsinspect-ca-key.pem").write_bytes(b"garbage")
    capsys.readouterr()
    assert main(argv) == 2
    assert "wsinspect ca --regenerate" in capsys.readouterr().err
    assert main([*argv, "--regenerate"]) == 0
    assert main(argv) == 0


def test_a_file_in_place_of_the_directory_exits_2_with_one_line(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("x")
    assert main(["ca", "--ca-dir", str(tmp_path / "f")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"wsinspect ca: error: {tmp_path / 'f'}: not a directory (the CA " \
                           "directory; choose another with --ca-dir or WSINSPECT_CA_DIR)\n"


def test_path_and_regenerate_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["ca", "--ca-dir", str(tmp_path / "d"), "--path", "--regenerate"])
    assert info.value.code == 2


def test_help_says_what_the_ca_is_for(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["ca", "--help"])
    out = capsys.readouterr().out
    assert "proxy --forward" in out and "--regenerate" in out and "WSINSPECT_CA_DIR" in out
