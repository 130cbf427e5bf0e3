"""The documentation stays true: the README short and its test command the CI's, every relative
link and anchor pointing somewhere real, every command-line option in the CLI reference, and the
violations page equal to the rule table it is generated from. Fast, no network."""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
import sys
from pathlib import Path
from types import ModuleType

import pytest

from wsinspect.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MARKDOWN = [README, *sorted(DOCS.glob("*.md"))]

README_MAX_LINES = 210
#: CI runs this; the README shows it byte for byte.
README_TEST_COMMAND = "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && python -m pytest -q"

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.M)


# ---- helpers ------------------------------------------------------------------------------------


def _prose(text: str) -> str:
    """``text`` without fenced code blocks and code spans (links there are not links)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    """The targets of the Markdown links and images in ``text``."""
    return _LINK.findall(_prose(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to
    hyphens (``## `wsinspect proxy` `` → ``wsinspect-proxy``)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = text.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's ``-1``, ``-2`` for repeats."""
    seen: dict[str, int] = {}
    out = set()
    for _, title in _HEADING.findall(_FENCE.sub("", text)):
        base = slug(title)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(path: Path) -> list[str]:
    """The relative links of ``path`` whose file (or ``#anchor`` in a Markdown file) is missing."""
    bad = []
    for target in links(path.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:, ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            bad.append(f"{target}: no such file")
            continue
        if (
            anchor
            and dest.suffix == ".md"
            and anchor not in anchors(dest.read_text(encoding="utf-8"))
        ):
            bad.append(f"{target}: no heading #{anchor} in {dest.name}")
    return bad


def long_options(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, set[str]]:
    """Command name → the long options its ``--help`` lists (nested actions such as
    ``ctl fault add`` included, under their own name)."""
    out: dict[str, set[str]] = {prefix: set()} if prefix else {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.update(long_options(sub, f"{prefix} {name}".strip()))
            continue
        if prefix:
            out[prefix] |= {
                o for o in action.option_strings if o.startswith("--") and o != "--help"
            }
    return out


def example_commands(text: str) -> list[str]:
    """The ``wsinspect ...`` command lines in the fenced code blocks of ``text``: continuation
    lines joined, cut at a comment, pipe, ``&&`` or trailing ``&``; synopses (with ``[``,
    ``...`` or ``…``) left out."""
    out = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S):
        for line in re.sub(r"\s*\\\n\s*", " ", block).splitlines():
            line = line.strip()
            if not line.startswith("wsinspect ") or re.search(r"\[|\.\.\.|…", line):
                continue
            line = re.split(r"\s#\s|\s\|\s|\s&&\s", line)[0].strip().removesuffix("&").strip()
            out.append(line)
    return out


def gen_violations() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_violations", DOCS / "gen_violations.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_violations", module)
    spec.loader.exec_module(module)
    return module


# ---- the README ---------------------------------------------------------------------------------


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move details to docs/"
    )


def test_readme_test_command_is_the_one_ci_runs() -> None:
    readme = README.read_text(encoding="utf-8").splitlines()
    assert README_TEST_COMMAND in readme, "the README's install-and-test command changed"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    marker = [
        i
        for i, line in enumerate(ci)
        if line.strip().startswith("#") and "The README's test command" in line
    ]
    assert len(marker) == 1, ".ci/run has no single comment naming the README's test command"
    ci_command = next(line.strip() for line in ci[marker[0] + 1 :] if line.strip())
    assert README_TEST_COMMAND.split(" && ")[-1] == ci_command
    # ... and both install the same extra into a fresh virtualenv.
    assert any("python3 -m venv .venv" in line for line in ci)
    assert any(re.search(r"pip install\b.*-e '\.\[test\]'", line) for line in ci)


# ---- links --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_point_to_existing_files_and_headings(path: Path) -> None:
    assert broken_links(path) == []


def test_readme_links_every_page_in_docs() -> None:
    targets = {t.partition("#")[0] for t in links(README.read_text(encoding="utf-8"))}
    pages = {f"docs/{p.name}" for p in DOCS.glob("*.md")}
    assert pages - targets == set()


def test_the_link_checker_sees_a_broken_link_and_a_broken_anchor(tmp_path: Path) -> None:
    (tmp_path / "b.md").write_text("# Only `this` heading\n", encoding="utf-8")
    page = tmp_path / "a.md"
    page.write_text(
        "[ok](b.md#only-this-heading) [gone](missing.md) [anchor](b.md#nope) "
        "[web](https://example.com/x.md) `[code](missing.md)`\n",
        encoding="utf-8",
    )
    assert broken_links(page) == ["missing.md: no such file", "b.md#nope: no heading #nope in b.md"]


# ---- the CLI reference --------------------------------------------------------------------------


def test_every_command_has_a_section_in_the_cli_reference() -> None:
    cli = (DOCS / "cli.md").read_text(encoding="utf-8")
    headings = anchors(cli)
    missing = [name for name in COMMANDS if f"wsinspect-{name}" not in headings]
    assert missing == [], f"docs/cli.md has no '## `wsinspect NAME`' section for {missing}"


def test_every_long_option_is_in_the_cli_reference() -> None:
    cli = (DOCS / "cli.md").read_text(encoding="utf-8")
    options = long_options(build_parser())
    assert set(COMMANDS) <= set(options)
    assert "--upstream" in options["proxy"] and "--rst" in options["ctl cut"]  # the walk works
    missing = {
        f"{command}: {option}"
        for command, opts in options.items()
        for option in opts
        if not re.search(re.escape(option) + r"(?![\w-])", cli)
    }
    assert missing == set(), f"options missing from docs/cli.md: {sorted(missing)}"


def test_every_example_command_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    from wsinspect.config import apply_config_file

    monkeypatch.chdir(ROOT)  # examples name configs/ relative to the checkout
    parser = build_parser()
    commands = [c for path in MARKDOWN for c in example_commands(path.read_text(encoding="utf-8"))]
    assert len(commands) > 20
    bad = []
    for command in commands:
        argv = shlex.split(command)[1:]
        try:
            apply_config_file(parser, argv, parser.parse_args(argv))
        except SystemExit:
            bad.append(command)
    assert bad == [], f"example commands the CLI refuses: {bad}"


def test_example_commands_are_found_and_cut_right() -> None:
    text = "```\nwsinspect proxy -u ws://h:1 \\\n    --seed 7 | jq .   # note\nwsinspect proxy [options]\n```\n"
    assert example_commands(text) == ["wsinspect proxy -u ws://h:1 --seed 7"]


# ---- the violations page ------------------------------------------------------------------------


def test_violations_page_matches_the_rule_table() -> None:
    page = (DOCS / "violations.md").read_text(encoding="utf-8")
    assert page == gen_violations().render(), (
        "docs/violations.md differs from wsinspect.wire.checks.RULES: "
        "run python docs/gen_violations.py"
    )


def test_violations_page_lists_each_rule_with_its_section_and_code() -> None:
    from wsinspect.wire.checks import NOTICES, RULES

    rows = {}
    for line in (DOCS / "violations.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"\| `([a-z0-9-]+)`( \*\(notice\)\*)? \| ([^|]+) \| [^|]+ \| (\d+) \|", line)
        if m:
            rows[m[1]] = (m[3].strip(), int(m[4]), bool(m[2]))
    assert rows == {
        rule: (section, code, rule in NOTICES) for rule, (section, code) in RULES.items()
    }
