"""Cutting a command line into the simple commands the guard matches."""
from __future__ import annotations

import random
import string

import pytest

from ezpyr.guard.lines import simple_commands
from ezpyr.guard.services import refusing_rules
from ezpyr.guard.models import CommandRule


@pytest.mark.parametrize("line, expected", [
    ("ls -l", ["ls -l"]),
    ("echo x; rm -rf /", ["echo x", "rm -rf /"]),
    ("a && b || c | d & e", ["a", "b", "c", "d", "e"]),
    ("echo x\nrm y", ["echo x", "rm y"]),
    ("r''m -rf /", ["rm -rf /"]),
    ('r"m" -rf /', ["rm -rf /"]),
    ("\\rm -rf /", ["rm -rf /"]),
    ("echo $(rm x)", ["rm x", "echo"]),
    ('echo "a $(rm x) b"', ["rm x", "echo a  b"]),
    ("echo `rm x`", ["rm x", "echo"]),
    ("(cd /; rm x)", ["cd /", "rm x"]),
    ("if true; then rm x; fi", ["true", "rm x"]),
    ("A=1 B=2 rm x", ["rm x"]),
    ("echo 'a; rm x'", ["echo a; rm x"]),
    ('echo "a; rm x"', ["echo a; rm x"]),
    ("ls # ; rm x", ["ls"]),
    ("touch x ls", ["touch x ls"]),
    ("echo 'unterminated; rm x", ["echo unterminated; rm x"]),
    ("", []),
])
def test_simple_commands(line, expected):
    assert simple_commands(line) == expected


def test_an_allowed_name_elsewhere_in_a_command_is_not_its_name():
    rule = CommandRule(pattern=r"^ls\b")
    assert refusing_rules([rule], "touch x ls") == []
    assert refusing_rules([rule], "touch x; ls") == [rule]


def test_any_text_is_cut_without_error():
    rng = random.Random(10)
    alphabet = string.printable + "$()`'\"\\;&|\n"
    for _ in range(3000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        for command in simple_commands(line):
            assert isinstance(command, str) and command
