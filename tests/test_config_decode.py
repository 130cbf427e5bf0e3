"""The decoding options: --decode NAME[:PATH_REGEX] (repeatable, from the config file too),
--no-decode, --proto with --proto-message; a bad value is one ConfigError line (status 2);
--decode list prints the decoders; a --script's decoder is known to --decode."""

from __future__ import annotations

from pathlib import Path

import pytest
from decoding_helpers import use_tally
from test_config import settings, write

from wsinspect.cli import main
from wsinspect.settings import ConfigError

UP = ("proxy", "-u", "ws://127.0.0.1:9000")


@pytest.fixture(autouse=True)
def _tally() -> None:
    use_tally()


def test_rules_are_kept_in_order_and_auto_is_on_by_default() -> None:
    s = settings(*UP, "--decode", "tally:^/chat", "--decode", "tally")
    assert s.decode == ("tally:^/chat", "tally") and s.auto_decode
    assert not settings(*UP, "--no-decode").auto_decode


def test_rules_come_from_the_config_file_and_flags_replace_them(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'upstream = "ws://h:1"\ndecode = ["tally:^/a"]\nno-decode = true\n')
    s = settings("proxy", "-c", cfg)
    assert s.decode == ("tally:^/a",) and not s.auto_decode
    assert settings("proxy", "-c", cfg, "--decode", "tally").decode == ("tally",)


@pytest.mark.parametrize(("argv", "why"), [
    (("--decode", "nosuch"), "--decode 'nosuch': unknown decoder 'nosuch' (known: "),
    (("--decode", "tally:(unclosed"), "--decode 'tally:(unclosed': bad path regex"),
    (("--proto-message", "a.B"), "--proto-message PKG.TYPE names a type of the --proto"),
])
def test_a_bad_value_is_a_config_error(argv: tuple[str, ...], why: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings(*UP, *argv)
    assert str(err.value).startswith(why)
    assert "\n" not in str(err.value)


def test_a_proto_that_does_not_load_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "missing.proto"
    with pytest.raises(ConfigError) as refused:
        settings(*UP, "--proto", str(missing), "--proto-message", "a.B")
    assert str(refused.value) == f"--proto {missing}: no such file"  # one line, said once


def test_the_cli_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*UP, "--decode", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wsinspect proxy: error: --decode 'nosuch'") and err.count("\n") == 1


def test_decode_list_prints_the_decoders(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["proxy", "--decode", "list"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert any(line.startswith("tally") and "tl:" in line and "tally.v1" in line
               for line in out.splitlines())


def test_a_scripts_decoder_can_be_named_by_decode(tmp_path: Path) -> None:
    script = tmp_path / "mine.py"
    script.write_text(
        "from wsinspect.script import register_decoder\n"
        "from decoding_helpers import Tally\n"
        "class Mine(Tally):\n"
        "    name = 'mine-from-script'\n"
        "    filter_prefix = 'mine'\n"
        "register_decoder(Mine())\n")
    s = settings(*UP, "--script", str(script), "--decode", "mine-from-script:^/m")
    assert s.decode == ("mine-from-script:^/m",)


@pytest.mark.parametrize("command", ["view", "stats"])
def test_view_and_stats_take_the_flags(command: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    rec = tmp_path / "r.jsonl"
    rec.write_text("")
    assert main([command, str(rec), "--decode", "nosuch"]) == 2
    assert "--decode 'nosuch': unknown decoder" in capsys.readouterr().err


def test_proto_loads_the_schema_for_the_protobuf_decoder() -> None:
    pytest.importorskip("grpc_tools")
    from wsinspect.wire.decoders import get_decoder, register
    from wsinspect.wire.decoders.protobuf import ProtobufDecoder

    proto = Path(__file__).parent / "decoders" / "protos" / "chat.proto"
    try:
        s = settings(*UP, "--proto", str(proto), "--proto-message", "chat.v1.Envelope",
                     "--decode", "protobuf")
        assert s.proto == str(proto) and s.proto_message == "chat.v1.Envelope"
        with pytest.raises(ConfigError, match=r"^--proto.*chat\.v1\.Nope"):
            settings(*UP, "--proto", str(proto), "--proto-message", "chat.v1.Nope")
        assert get_decoder("protobuf") is not None
    finally:
        register(ProtobufDecoder(), replace=True)
