"""The man page (docs/man/ntp-monitor.8) and the bash completion
(deploy/completion/ntp-monitor.bash) against what the binary itself says it accepts.

`ntp-monitor --help` and `ntp-monitor COMMAND --help` (CLI11) are the source of truth: every
sub-command and every long option they print must be documented in the man page, in the
section of its command, and offered by the completion, which must offer nothing else. The
completion is exercised the way bash calls it: a bash process sources the file, sets
COMP_WORDS and COMP_CWORD, calls the registered function and prints COMPREPLY.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import peers

MAN_PAGE = peers.REPO / "docs" / "man" / "ntp-monitor.8"
COMPLETION = peers.REPO / "deploy" / "completion" / "ntp-monitor.bash"

# An option line of CLI11's help: two spaces, an optional short form, the long option (dots
# included: the exporter-toolkit spellings such as --web.listen-address), and for options
# restricted to a set, "TYPE:{a,b,c}".
_OPTION_LINE = re.compile(r"^  (?:-\w,)?(--[a-z0-9][a-z0-9.-]*)(?: \w+:\{([^}]*)\})?", re.M)
_SUBCOMMAND_LINE = re.compile(r"^  ([a-z][a-z0-9-]*)\s", re.M)
# Options every command has, documented once in the man page rather than per command.
_GENERIC = {"--help", "--version"}


@dataclass
class CommandHelp:
    options: set[str] = field(default_factory=set)
    choices: dict[str, list[str]] = field(default_factory=dict)  # option -> allowed words


@dataclass
class Cli:
    commands: list[str]  # sub-commands, in --help order
    help: dict[str, CommandHelp]  # "" is the daemon (no sub-command)


def _section(text: str, title: str) -> str:
    """The lines of CLI11's help section `title:` (up to the next blank line)."""
    match = re.search(rf"^{title}:\n(.*?)(?:\n\n|\Z)", text, re.M | re.S)
    return match.group(1) if match else ""


def _parse_help(text: str) -> CommandHelp:
    parsed = CommandHelp()
    for option, choices in _OPTION_LINE.findall(_section(text, "Options")):
        parsed.options.add(option)
        if choices:
            parsed.choices[option] = choices.split(",")
    return parsed


def _help_of(*command: str) -> str:
    out = peers.run_monitor([*command, "--help"], timeout_s=30)
    assert out.returncode == 0, f"{command} --help exited {out.returncode}: {out.stderr}"
    return out.stdout


@pytest.fixture(scope="module")
def cli(monitor) -> Cli:
    top = _help_of()
    commands = _SUBCOMMAND_LINE.findall(_section(top, "Subcommands"))
    assert commands, f"no sub-commands in --help:\n{top}"
    helps = {"": _parse_help(top)}
    for command in commands:
        helps[command] = _parse_help(_help_of(command))
        assert helps[command].options, f"{command} --help lists no option"
    return Cli(commands, helps)


# ----------------------------------------------------------------------------------------
# Man page


def _man_text(source: str) -> str:
    """troff source -> the words a reader sees: escapes resolved, font changes dropped."""
    text = source.replace("\\-", "-").replace("\\~", " ").replace("\\%", "")
    text = re.sub(r"\\f[BIRP]", "", text)
    return text.replace("\\&", "")


def _man_sections() -> dict[str, str]:
    """Section text by title; a sub-section of COMMANDS is filed under its command's name,
    every other sub-section under its .SH section."""
    sections: dict[str, list[str]] = {}
    current, top = "", ""
    for line in _man_text(MAN_PAGE.read_text()).splitlines():
        heading = re.match(r"\.(SH|SS)\s+(.*)", line)
        if heading:
            kind, title = heading.group(1), heading.group(2).strip().strip('"')
            if kind == "SH":
                top = current = title
            elif top == "COMMANDS":
                current = title.split()[0]
            sections.setdefault(current, [])
            continue
        sections.setdefault(current, []).append(line)
    return {title: "\n".join(lines) for title, lines in sections.items()}


def _mentions(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def test_man_page_documents_every_command_and_option(cli):
    sections = _man_sections()
    whole = "\n".join(sections.values())
    missing = []
    for generic in sorted(_GENERIC):
        if not _mentions(whole, generic):
            missing.append(f"{generic} (anywhere)")
    for command in cli.commands:
        if command not in sections:
            missing.append(f"section '.SS {command}' under COMMANDS")
    if "THE MONITORING DAEMON" not in sections:
        missing.append("section 'THE MONITORING DAEMON'")
    for command, parsed in cli.help.items():
        text = sections.get(command or "THE MONITORING DAEMON", "")
        for option in sorted(parsed.options - _GENERIC):
            if not _mentions(text, option):
                missing.append(f"{command or 'daemon'}: {option}")
        for option, words in parsed.choices.items():
            for word in words:
                if not _mentions(text, word):
                    missing.append(f"{command or 'daemon'}: {option} value {word}")
    assert not missing, f"{MAN_PAGE.name} does not document: {missing}"


def test_man_page_synopsis_names_every_command(cli):
    synopsis = _man_sections()["SYNOPSIS"]
    absent = [c for c in cli.commands if not _mentions(synopsis, c)]
    assert not absent, f"SYNOPSIS lacks {absent}"


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff not installed (groff-base)")
def test_man_page_formats_without_warnings():
    out = subprocess.run(["groff", "-man", "-ww", "-z", "-Tutf8", str(MAN_PAGE)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stderr == "", out.stderr


@pytest.mark.skipif(shutil.which("man") is None, reason="man not installed (man-db)")
def test_man_page_renders_with_man(cli):
    out = subprocess.run(["man", "--warnings", "-l", str(MAN_PAGE)], capture_output=True,
                         text=True, timeout=30, env={"MANWIDTH": "80", "LC_ALL": "C.UTF-8",
                                                     "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stderr == "", out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[0] == "NTP-MONITOR(8)", lines[0]
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS", "FILES"):
        assert heading in lines, f"no {heading} heading in the rendered page"
    rendered = "\n".join(lines)
    for command in cli.commands:
        assert re.search(rf"^   {re.escape(command)}\b", rendered, re.M), command
    too_wide = [line for line in lines if len(line) > 80]
    assert not too_wide, too_wide


# ----------------------------------------------------------------------------------------
# Bash completion

_COMPLETE = r"""
source "$1"; shift
spec=$(complete -p ntp-monitor) || exit 3
[[ $spec == *"-F _ntp_monitor "* ]] || { echo "registered as: $spec" >&2; exit 4; }
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
_ntp_monitor ntp-monitor "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""


def complete(*words: str, cwd: Path | None = None) -> list[str]:
    """COMPREPLY for the command line `ntp-monitor WORDS...`, the last word being completed
    (pass "" to complete a new word)."""
    bash = shutil.which("bash")
    assert bash is not None
    out = subprocess.run([bash, "--norc", "--noprofile", "-c", _COMPLETE, "bash",
                          str(COMPLETION), "ntp-monitor", *words],
                         capture_output=True, text=True, timeout=30, cwd=cwd)
    assert out.returncode == 0, f"completion of {words} failed ({out.returncode}): {out.stderr}"
    assert out.stderr == "", out.stderr
    return [line for line in out.stdout.splitlines() if line]


def test_completion_offers_the_commands(cli):
    assert complete("") == cli.commands
    assert complete("he") == ["healthcheck"]
    # A value of a daemon option is not a command: after it, commands are offered again.
    assert complete("--config", "query", "") == cli.commands
    assert complete("--config=servers.yaml", "") == cli.commands


def test_completion_offers_exactly_the_options_of_each_command(cli):
    wrong = {}
    for command, parsed in cli.help.items():
        words = [command, "--"] if command else ["--"]
        offered = complete(*words)
        if sorted(offered) != sorted(parsed.options):
            wrong[command or "daemon"] = {
                "not offered": sorted(parsed.options - set(offered)),
                "unknown to --help": sorted(set(offered) - parsed.options),
            }
    assert not wrong, wrong


def test_completion_after_daemon_options_completes_the_command(cli):
    expected = sorted(cli.help["query"].options)
    assert sorted(complete("--log-level", "debug", "query", "--")) == expected
    assert sorted(complete("--config", "=", "x.yaml", "query", "--")) == expected


def test_completion_offers_the_values_of_each_choice_option(cli):
    checked = 0
    for command, parsed in cli.help.items():
        for option, words in parsed.choices.items():
            prefix = [command] if command else []
            assert sorted(complete(*prefix, option, "")) == sorted(words), (command, option)
            # --option=<TAB>: bash hands the '=' over as a word of its own.
            assert sorted(complete(*prefix, option, "=", "")) == sorted(words), (command, option)
            checked += 1
    assert checked >= 3, "expected --log-format, --log-level and --ntp-version at least"


def test_completion_completes_file_names(cli, tmp_path):
    (tmp_path / "servers.yaml").write_text("servers: []\n")
    (tmp_path / "secret.keys").write_text("1 SHA1 HEX:00\n")
    assert complete("check-config", "ser", cwd=tmp_path) == ["servers.yaml"]
    assert complete("--config", "ser", cwd=tmp_path) == ["servers.yaml"]
    assert complete("query", "--key-file", "sec", cwd=tmp_path) == ["secret.keys"]
    # A number is expected: nothing to offer, and certainly not file names.
    assert complete("query", "--samples", "", cwd=tmp_path) == []
