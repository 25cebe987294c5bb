"""The commands a reader of the docs is told to type, found and split the way a shell would.

Sources: README.md, docs/*.md, bench/README.md, deploy/**/README.md and libs/*/README.md.
In those pages a command is

- a line of a fenced ``sh``, ``bash``, ``console`` or ``shell`` block, or of an unlabelled
  block whose first line starts with a known program (other unlabelled blocks are output);
- an inline code span in prose that starts with a program a reader runs (``gmv …``,
  ``make …``, ``deploy/local/…``, ``kubectl …``, …).

Backslash continuations (and lines ending in a pipe or ``&&``) are joined, prompts (``$ ``)
and comments dropped, except a trailing ``# or: COMMAND``, which names an alternative command
and is kept. Each line is then split on ``&&``, ``||``, ``;``, ``|`` and ``&`` into the
program invocations it makes, including those inside ``$(…)``. In prose, ``a|b`` (or a
table's ``a\\|b``) lists alternatives and ``[--flag]`` marks an optional flag.

Run ``python tests/docs/doc_commands.py`` to list every command with its kind.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SHELL_LANGUAGES = frozenset({"sh", "bash", "console", "shell"})
# A code span or unlabelled block starting with one of these is a command.
PROGRAMS = frozenset(
    {
        "gmv",
        "make",
        "curl",
        "docker",
        "kubectl",
        "kustomize",
        "python",
        "python3",
        "uv",
        "mysql",
        "mariadb",
        "mariadb-dump",
        "eval",
        "export",
    }
)
PROGRAM_PREFIXES = (".venv/bin/", "deploy/local/", "./deploy/local/")
SEPARATORS = ("&&", "||", ";", "|", "&")
# Stands for a command substitution in the command that contains it.
SUBSTITUTION = "$(…)"
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
REDIRECTION = re.compile(r"^\d*(>>?|<)(&\d+)?")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+)\s*(?P<lang>[\w-]*)")
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*$")
PLACEHOLDER = re.compile(r"^(…|<[^>]+>|[A-Z][A-Z_]*)$")
TEXT_TOOLS = frozenset({"printf", "sed", "tr", "awk", "date"})
SHELL_BUILTINS = frozenset({"export", "eval"})
# The README section whose block tests/cli/test_dev.py runs against `gmv dev`.
TOUR = ("README.md", "Curl tour")


@dataclass(frozen=True)
class Invocation:
    """One program run by a documented command."""

    path: str
    line: int
    section: str
    source: str
    argv: tuple[str, ...]
    inline: bool

    @property
    def command(self) -> tuple[str, ...]:
        """The arguments after any leading ``NAME=value`` assignments."""
        words = list(self.argv)
        while words and ASSIGNMENT.match(words[0]):
            words.pop(0)
        return tuple(words)

    @property
    def program(self) -> str:
        command = self.command
        return command[0].removeprefix("./") if command else ""

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def text(self) -> str:
        return shlex.join(self.argv)

    def __str__(self) -> str:
        return f"{self.where}: `{self.text}`"


@dataclass(frozen=True)
class Block:
    lang: str
    first_line: int
    lines: tuple[str, ...]
    section: str


def doc_paths() -> list[Path]:
    """Every page the commands are read from."""
    return [
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "bench" / "README.md",
        *sorted((ROOT / "deploy").glob("**/README.md")),
        *sorted((ROOT / "libs").glob("*/README.md")),
    ]


def is_placeholder(word: str) -> bool:
    """``…``, ``<service>`` or an upper-case name like ``REV``: text the reader replaces."""
    return bool(PLACEHOLDER.match(word))


def starts_with_program(text: str) -> bool:
    words = text.split()
    if not words:
        return False
    first = words[0]
    if first in PROGRAMS:
        return len(words) > 1
    return first.startswith(PROGRAM_PREFIXES) and not first.endswith("/")


# Markdown


def fenced_blocks(lines: list[str]) -> Iterator[Block]:
    section = ""
    opened: tuple[str, str, int, str] | None = None
    body: list[str] = []
    for number, line in enumerate(lines, start=1):
        match = FENCE.match(line)
        if opened is None:
            heading = HEADING.match(line)
            if heading:
                section = heading["title"]
            if match:
                opened = (match["fence"], match["lang"].lower(), number + 1, section)
                body = []
            continue
        if match and match["fence"] == opened[0] and not match["lang"]:
            yield Block(opened[1], opened[2], tuple(body), opened[3])
            opened = None
            continue
        body.append(line)


def is_command_block(block: Block) -> bool:
    if block.lang in SHELL_LANGUAGES:
        return True
    if block.lang:
        return False
    for line in block.lines:
        stripped = line.strip().removeprefix("$ ")
        if stripped and not stripped.startswith("#"):
            return starts_with_program(stripped)
    return False


def strip_comment(line: str) -> tuple[str, str]:
    """(code, comment) of a shell line; a ``#`` inside quotes or a word is not a comment."""
    quote = ""
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\" and quote != "'":
            index += 2
            continue
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip(), line[index + 1 :].strip()
        index += 1
    return line.rstrip(), ""


def logical_lines(block: Block) -> Iterator[tuple[int, str]]:
    """(line number, shell line) with continuations joined and comments dropped."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(block.lines, start=block.first_line):
        line = raw.strip()
        if block.lang == "console" and not line.startswith("$ ") and not pending:
            continue  # output of the command above
        line = line.removeprefix("$ ")
        if not pending and (not line or line.startswith("#")):
            continue
        code, comment = strip_comment(line)
        if not pending:
            start = number
        if comment.startswith("or:"):
            yield start, comment.removeprefix("or:").strip()
        if code.endswith("\\"):
            pending.append(code[:-1].strip())
            continue
        pending.append(code)
        if code.endswith(("|", "&&", "||")):
            continue
        yield start, " ".join(pending)
        pending = []
    if pending:
        yield start, " ".join(pending)


def inline_spans(lines: list[str]) -> Iterator[tuple[int, str, str]]:
    """(line number, section, text) of every code span outside fenced blocks."""
    prose = list(lines)
    section_at = []
    section = ""
    inside: str | None = None
    for index, line in enumerate(lines):
        match = FENCE.match(line)
        if inside is None and match:
            inside = match["fence"]
            prose[index] = ""
        elif inside is not None:
            if match and match["fence"] == inside and not match["lang"]:
                inside = None
            prose[index] = ""
        elif heading := HEADING.match(line):
            section = heading["title"]
        section_at.append(section)
    text = "\n".join(prose)
    for match in re.finditer(r"(?<!`)`([^`]+)`(?!`)", text):
        number = text.count("\n", 0, match.start()) + 1
        yield number, section_at[number - 1], " ".join(match[1].split())


def expand_alternatives(span: str) -> list[str]:
    """``x start\\|stop`` or ``x a|b`` (alternatives in prose) as one command per choice."""
    choices = []
    for word in span.split(" "):
        if "|" in word and word.replace("\\|", "|") != "|":
            choices.append(word.replace("\\|", "|").split("|"))
        else:
            choices.append([word])
    return [" ".join(words) for words in itertools.product(*choices)]


# Shell


def closing_paren(line: str, start: int) -> int:
    """Index of the ``)`` closing a ``$(`` whose contents begin at ``start``."""
    depth = 0
    quote = ""
    for index in range(start, len(line)):
        char = line[index]
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                return index
            depth -= 1
    raise ValueError(f"unclosed $( in {line!r}")


def split_invocations(line: str) -> list[str]:
    """The simple commands of a shell line: its pipeline and list members, then the
    commands inside its ``$(…)`` substitutions (each replaced by ``$(…)`` where it stood)."""
    pieces: list[str] = []
    nested: list[str] = []
    current: list[str] = []
    quote = ""
    index = 0
    while index < len(line):
        char = line[index]
        if quote == "'":
            quote = "" if char == "'" else quote
        elif char == "\\":
            current.append(line[index : index + 2])
            index += 2
            continue
        elif line.startswith("$(", index):
            end = closing_paren(line, index + 2)
            nested += split_invocations(line[index + 2 : end])
            current.append(SUBSTITUTION)
            index = end + 1
            continue
        elif quote == '"':
            quote = "" if char == '"' else quote
        elif char in "'\"":
            quote = char
        elif separator := separator_at(line, index):
            pieces.append("".join(current))
            current = []
            index += len(separator)
            continue
        current.append(char)
        index += 1
    pieces.append("".join(current))
    return [piece.strip() for piece in pieces if piece.strip()] + nested


def separator_at(line: str, index: int) -> str | None:
    for separator in SEPARATORS:
        if line.startswith(separator, index):
            is_redirection = separator == "&" and (
                line[index - 1 : index] == ">" or line[index + 1 : index + 2] == ">"
            )
            return None if is_redirection else separator
    return None


def argv_of(piece: str) -> tuple[str, ...]:
    """The words of a simple command, quotes removed, redirections dropped."""
    words = shlex.split(piece)
    argv: list[str] = []
    skip_target = False
    for word in words:
        if skip_target:
            skip_target = False
            continue
        redirection = None if is_placeholder(word) else REDIRECTION.match(word)
        if redirection:
            skip_target = redirection.end() == len(word)
            continue
        argv.append(word)
    return tuple(argv)


# Pages


def invocations_in(path: Path) -> list[Invocation]:
    return invocations_of_markdown(path.relative_to(ROOT).as_posix(), path.read_text())


def invocations_of_markdown(relative: str, text: str) -> list[Invocation]:
    """The commands of one page, ``relative`` being its path from the repository root."""
    lines = text.splitlines()
    found: list[Invocation] = []
    for block in fenced_blocks(lines):
        if not is_command_block(block):
            continue
        for number, line in logical_lines(block):
            found += [
                Invocation(relative, number, block.section, line, argv_of(piece), False)
                for piece in split_invocations(line)
            ]
    for number, section, span in inline_spans(lines):
        if not starts_with_program(span):
            continue
        for choice in expand_alternatives(span):
            unbracketed = re.sub(r"[\[\]]", "", choice)
            found += [
                Invocation(relative, number, section, span, argv_of(piece), True)
                for piece in split_invocations(unbracketed)
            ]
    return sorted(found, key=lambda invocation: invocation.line)


def all_invocations() -> list[Invocation]:
    return [invocation for path in doc_paths() for invocation in invocations_in(path)]


def kind_of(invocation: Invocation) -> str:
    """Which proof a command needs; ``unknown`` fails the doc command test."""
    program = invocation.program
    name = program.removeprefix(".venv/bin/")
    if (invocation.path, invocation.section) == TOUR and not invocation.inline:
        return "readme-tour"
    if not program or program in SHELL_BUILTINS:
        return "shell"
    if name == "gmv":
        return "gmv"
    if program == "deploy/local/kafka-cli":
        return "kafka-cli"
    if program.startswith("deploy/local/"):
        return "deploy-local"
    if name in ("python", "python3"):
        runs_code = invocation.command[1:2] in (("-c",), ("-m",))
        return "run" if runs_code else "python-script"
    return {
        "make": "make",
        "curl": "curl",
        "kubectl": "kubernetes",
        "kustomize": "kubernetes",
        "docker": "docker",
        "pytest": "pytest",
        "mariadb": "mariadb",
        "mariadb-dump": "mariadb",
        "rm": "local-data",
    }.get(name, "run" if name in TEXT_TOOLS else "unknown")


def main() -> None:
    invocations = all_invocations()
    for invocation in invocations:
        print(f"{kind_of(invocation):14} {invocation}")
    print()
    for kind, count in Counter(map(kind_of, invocations)).most_common():
        print(f"{kind:14} {count}")


if __name__ == "__main__":
    main()
