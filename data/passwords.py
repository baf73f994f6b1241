"""The password rule, the one place every password that is set is checked against.

A password needs ``MIN_LENGTH`` characters, must not be or contain the account's name, and
must not be one of the common passwords in ``common_passwords.txt`` (compared
case-insensitively). ``problems`` says what is wrong, in Chinese, for the pages and the CLI.
"""

from __future__ import annotations

import functools
import string
from pathlib import Path

MIN_LENGTH = 10
# The rule as the pages state it next to every password field.
RULE = f"至少{MIN_LENGTH}个字符，不能包含用户名，也不能是常见密码"
COMMON_FILE = Path(__file__).with_name("common_passwords.txt")
# Shorter names ("li") occur inside good passwords by chance; they only count alone.
NAME_INSIDE = 3
# What people put around a name: "li12345678", "Wang@2024!".
PADDING = string.digits + string.punctuation + string.whitespace


@functools.cache
def common() -> frozenset[str]:
    """The shipped common passwords, case-folded (``#`` lines are comments)."""
    lines = COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(
        line.strip().casefold() for line in lines if line.strip() and not line.startswith("#")
    )


def has_name(password: str, name: str) -> bool:
    """True when ``password`` is the name, holds a name of 3+ characters, or pads a short one."""
    name = name.strip().casefold()
    if not name:
        return False
    folded = password.casefold()
    if len(name) >= NAME_INSIDE:
        return name in folded
    return folded.strip(PADDING) == name


def problems(password: str, *, name: str) -> list[str]:
    """What is wrong with ``password`` for the account ``name``, in Chinese; empty when fine."""
    found = []
    if len(password) < MIN_LENGTH:
        found.append(f"密码至少需要{MIN_LENGTH}个字符。")
    if has_name(password, name):
        found.append("密码不能包含用户名。")
    if password.casefold() in common():
        found.append("这个密码太常见，很容易被猜到，请换一个。")
    return found
