"""A command line cut into the simple commands the shell would run.

The command guard matches its rules against each simple command of a line,
not against the line as typed, so that ``echo x; rm -rf /`` is seen as two
commands and ``r''m -rf /`` as ``rm -rf /``. The cut follows the shell's
own grammar as far as a guard needs it:

* commands are separated by ``;``, ``&``, ``|`` (so ``&&`` and ``||`` too),
  newlines, and the parentheses of subshells;
* ``$(…)`` and backticks are commands of their own, also inside double
  quotes (the shell runs them there too);
* quotes are removed and backslashes drop, so quoted or escaped letters read
  as the letters themselves;
* leading reserved words (``if``, ``then``, ``do``, ``!``, ``{`` …) and
  variable assignments (``A=1 rm …``) are dropped, so the command's name
  comes first.

It is not a shell: aliases, functions, ``eval``, variables and scripts on
the server are not expanded (the README lists what the guard cannot see).
"""
from __future__ import annotations

import re

RESERVED = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for",
            "case", "esac", "in", "!", "{", "}", "time", "coproc", "function"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SEPARATORS = set(";&|\n\r()")


class _Level:
    """One nesting level: the command being read, and whether a double quote
    is open at this level."""

    def __init__(self, closer: str = ""):
        self.closer = closer  # ")" for $(…), "`" for backticks, "" at the top
        self.words: list[str] = []
        self.word: str | None = None
        self.double = False

    def add(self, text: str) -> None:
        self.word = (self.word or "") + text

    def end_word(self) -> None:
        if self.word is not None:
            self.words.append(self.word)
        self.word = None


def _finish(level: _Level, out: list[str]) -> None:
    level.end_word()
    words = level.words
    while words and (words[0] in RESERVED or ASSIGNMENT.match(words[0])):
        words = words[1:]
    command = " ".join(words)
    if command.strip():
        out.append(command)
    level.words = []


def simple_commands(line: str) -> list[str]:
    """Every simple command of ``line``, quotes and backslashes removed, in
    the order they start. An unterminated quote or substitution runs to the
    end of the line (the shell would wait for more; the guard reads what
    there is)."""
    out: list[str] = []
    stack = [_Level()]
    i, n = 0, len(line)
    while i < n:
        level = stack[-1]
        c = line[i]
        if level.double:
            if c == '"':
                level.double = False
                level.add("")
            elif c == "\\" and i + 1 < n:
                i += 1
                level.add(line[i])
            elif c == "`" or (c == "$" and line.startswith("$(", i)):
                i += 1 if c == "`" else 2
                stack.append(_Level(")" if c == "$" else "`"))
                continue
            elif level.closer and c == level.closer and c == "`":
                _finish(stack.pop(), out)
            else:
                level.add(c)
            i += 1
            continue
        if c == "'":
            end = line.find("'", i + 1)
            end = n if end < 0 else end
            level.add(line[i + 1:end])
            i = end + 1
            continue
        if c == '"':
            level.double = True
            level.add("")
        elif c == "\\":
            if i + 1 < n and line[i + 1] != "\n":
                level.add(line[i + 1])
            i += 2
            continue
        elif c == "#" and level.word is None:
            end = line.find("\n", i)
            i = n if end < 0 else end
            continue
        elif level.closer and c == level.closer:
            _finish(stack.pop(), out)
        elif c == "`" or (c == "$" and line.startswith("$(", i)):
            i += 1 if c == "`" else 2
            stack.append(_Level(")" if c == "$" else "`"))
            continue
        elif c in SEPARATORS:
            _finish(level, out)
        elif c.isspace():
            level.end_word()
        else:
            level.add(c)
        i += 1
    while stack:
        _finish(stack.pop(), out)
    return out
