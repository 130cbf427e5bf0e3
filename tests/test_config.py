"""TOML config files: every option can live in a file, flags override it, bad files are refused
with the file, the key and the reason; every shipped config loads."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from wsinspect.config import add_proxy_arguments, apply_config_file, settings_from_args
from wsinspect.faults.plan import FaultPlan
from wsinspect.settings import ConfigError, Settings

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SHIPPED = sorted(CONFIGS.glob("*.toml"))


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="wsinspect")
    sub = root.add_subparsers(dest="command")
    add_proxy_arguments(sub.add_parser("proxy"))
    return root


def settings(*argv: str) -> Settings:
    p = parser()
    args = apply_config_file(p, list(argv), p.parse_args(list(argv)))
    return settings_from_args(args)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "wsinspect.toml"
    path.write_text(text)
    return str(path)


def test_options_come_from_the_file(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'upstream = "ws://127.0.0.1:9000"\nidle-timeout = 60\n'
                'allow-origin = ["https://*.example.com"]\nstrict = true\n')
    s = settings("proxy", "--config", cfg)
    assert s.upstream is not None and s.upstream.port == 9000
    assert s.idle_timeout == 60 and s.allow_origins == ("https://*.example.com",) and s.strict


def test_flags_override_the_file(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'upstream = "ws://127.0.0.1:9000"\nidle-action = "reset"\n'
                'listen = "127.0.0.1:7000"\n')
    s = settings("proxy", "--idle-action", "close-tcp", "--config", cfg, "-l", "127.0.0.1:7001")
    assert s.idle_action == "close-tcp" and s.listen_port == 7001


def test_a_repeatable_flag_replaces_the_files_list(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'upstream = "ws://h:1"\nallow-origin = ["https://a.example"]\n'
                'fault = ["drop:p=0.1"]\n')
    s = settings("proxy", "-c", cfg, "--allow-origin", "https://b.example", "--fault", "duplicate")
    assert s.allow_origins == ("https://b.example",)
    assert [f.kind for f in s.faults] == ["duplicate"]


def test_fault_tables(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'upstream = "ws://h:1"\n[[fault]]\nkind = "latency"\ndir = "s2c"\n'
                'ms = 200\njitter = 50\n[[fault]]\nkind = "throttle"\nrate = "16k"\n')
    s = settings("proxy", "-c", cfg)
    assert [str(f) for f in s.faults] == ["latency:dir=s2c,ms=200,jitter=50", "throttle:rate=16384"]


def test_store_false_flag_in_a_file(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'upstream = "ws://h:1"\nno-redact = true\n')
    assert settings("proxy", "-c", cfg).redact is False


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("idle-timout = 5", "idle-timout", "not a wsinspect option (did you mean 'idle-timeout'?)"),
        ("idle-timeout = -5", "idle-timeout", "must be positive"),
        ('idle-action = "hangup"', "idle-action", "expected one of close-tcp"),
        ('origin-mode = "strict"', "origin-mode", "is not one of enforce, report"),
        ("strict = 1", "strict", "expected true or false"),
        ('allow-origin = ["example.com"]', "allow-origin", "is not an origin"),
        ('listen = ["a"]', "listen", "expected a string"),
        ('[[fault]]\nkind = "latency"\nms = "soon"', "fault[0].ms", "'soon' is not a number"),
        ('[[fault]]\nkind = "explode"', "fault[0].kind", "unknown fault 'explode'"),
        ('fault = ["drop:p=2"]', "fault[0]", "a probability is between 0 and 1"),
    ],
)
def test_a_bad_config_names_the_file_the_key_and_the_reason(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    cfg = write(tmp_path, 'upstream = "ws://h:1"\n' + text + "\n")
    with pytest.raises(ConfigError) as info:
        settings("proxy", "--config", cfg)
    message = str(info.value)
    assert message.startswith(f"{cfg}: key '{key}': "), message
    assert reason in message


def test_invalid_toml_names_the_file_and_line(tmp_path: Path) -> None:
    cfg = write(tmp_path, "listen = \n")
    with pytest.raises(ConfigError, match=re.escape(cfg) + r": not valid TOML: .*line 1"):
        settings("proxy", "--config", cfg)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        settings("proxy", "--config", str(tmp_path / "nope.toml"), "-u", "ws://h:1")


def test_upstream_is_still_required_without_a_file() -> None:
    with pytest.raises(ConfigError, match="--upstream is required"):
        settings("proxy")


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_config_loads(path: Path) -> None:
    s = settings("proxy", "--config", str(path), "--upstream", "ws://127.0.0.1:9000")
    FaultPlan.from_settings(s)  # the policies it describes build too


def test_the_shipped_configs_are_the_documented_set() -> None:
    assert {p.name for p in SHIPPED} >= {"default.toml", "strict-origin.toml", "idle-cut.toml",
                                          "flaky-mobile.toml", "chaos.toml"}


def test_default_toml_gives_the_defaults() -> None:
    plain = settings("proxy", "--upstream", "ws://127.0.0.1:9000")
    from_file = settings("proxy", "-c", str(CONFIGS / "default.toml"), "-u", "ws://127.0.0.1:9000")
    assert from_file == plain.__class__(**{**_fields(plain), "config": str(CONFIGS / "default.toml")})


def _fields(s: Settings) -> dict[str, object]:
    return {name: getattr(s, name) for name in s.__dataclass_fields__}


def test_default_toml_documents_every_option() -> None:
    text = (CONFIGS / "default.toml").read_text()
    keys = set(re.findall(r"^#? ?([a-z][a-z0-9-]*) = ", text, re.M))
    p = argparse.ArgumentParser()
    add_proxy_arguments(p)
    options = {o[2:] for a in p._actions for o in a.option_strings if o.startswith("--")}
    missing = options - keys - {"help", "config", "fault"}
    assert not missing, f"configs/default.toml does not mention: {sorted(missing)}"
    assert "[[fault]]" in text


def test_shipped_recipes_say_what_they_promise() -> None:
    idle = settings("proxy", "-c", str(CONFIGS / "idle-cut.toml"), "-u", "ws://h:1")
    assert (idle.idle_timeout, idle.idle_action) == (60, "close-tcp")
    strict = settings("proxy", "-c", str(CONFIGS / "strict-origin.toml"), "-u", "ws://h:1")
    assert strict.require_origin and strict.allow_origins
    mobile = settings("proxy", "-c", str(CONFIGS / "flaky-mobile.toml"), "-u", "ws://h:1")
    assert {f.kind for f in mobile.faults} == {"latency", "throttle", "drop"}


def test_the_cli_refuses_a_bad_config_before_listening(tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = write(tmp_path, 'upstream = "ws://127.0.0.1:9"\nlisten = "127.0.0.1:0"\nidle-timeout = "soon"\n')
    out = subprocess.run([sys.executable, "-m", "wsinspect", "proxy", "--config", cfg],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert f"{cfg}: key 'idle-timeout': " in out.stderr
    assert "listening" not in out.stdout


# ---- --strict and --max-message-size (issue #11) -------------------------------------------


def test_strict_has_a_message_size_limit_by_default() -> None:
    from wsinspect.settings import DEFAULT_MAX_MESSAGE_SIZE

    assert DEFAULT_MAX_MESSAGE_SIZE == 64 << 20
    assert settings("proxy", "-u", "ws://h:1", "--strict").max_message_size == 64 << 20


def test_max_message_size_0_means_no_limit_and_a_size_is_kept() -> None:
    assert settings("proxy", "-u", "ws://h:1", "--strict", "--max-message-size", "0").max_message_size is None
    assert settings("proxy", "-u", "ws://h:1", "--strict", "--max-message-size", "1m").max_message_size == 1 << 20


def test_without_strict_there_is_no_limit_and_max_message_size_is_refused() -> None:
    assert settings("proxy", "-u", "ws://h:1").max_message_size is None
    with pytest.raises(ConfigError, match="only acts with --strict"):
        settings("proxy", "-u", "ws://h:1", "--max-message-size", "0")


def test_the_help_states_the_default() -> None:
    proxy = argparse.ArgumentParser(prog="wsinspect proxy")
    add_proxy_arguments(proxy)
    text = " ".join(proxy.format_help().split())
    assert "(default: 64m; 0: no limit)" in text


def test_forward_mode_needs_no_upstream_and_keeps_its_choices(tmp_path: Path) -> None:
    s = settings("proxy", "--forward", "--ca-dir", str(tmp_path), "--ignore-hosts", r"\.apple\.com",
                 "--allow-hosts", "^api", "--proxy-auth", "u:p:w")
    assert (s.forward, s.upstream, s.ca_dir) == (True, None, str(tmp_path))
    assert (s.ignore_hosts, s.allow_hosts, s.proxy_auth) == ((r"\.apple\.com",), ("^api",), "u:p:w")


def test_forward_options_come_from_the_config_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'forward = true\nignore-hosts = ["pinned"]\nproxy-auth = "a:b"\n')
    s = settings("proxy", "--config", path)
    assert (s.forward, s.ignore_hosts, s.proxy_auth) == (True, ("pinned",), "a:b")


@pytest.mark.parametrize(("argv", "why"), [
    (("--forward", "-u", "ws://h:1"), "exclude each other"),
    (("--forward", "--cert", "c.pem", "--key", "k.pem"), "plain HTTP proxy requests"),
    (("-u", "ws://h:1", "--ignore-hosts", "x"), "--ignore-hosts only acts with --forward"),
    (("-u", "ws://h:1", "--proxy-auth", "a:b"), "--proxy-auth only acts with --forward"),
    (("--forward", "--ignore-hosts", "(unclosed"), "not a regular expression"),
    (("--forward", "--proxy-auth", "nocolon"), "expected USER:PASS"),
])
def test_forward_options_that_do_not_fit_are_refused(argv: tuple[str, ...], why: str) -> None:
    with pytest.raises(ConfigError, match=why.replace("(", r"\(")):
        settings("proxy", *argv)


def test_without_upstream_the_error_mentions_forward() -> None:
    with pytest.raises(ConfigError, match="or --forward"):
        settings("proxy")
