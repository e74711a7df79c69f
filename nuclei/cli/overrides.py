"""A command's own spellings, rewritten to Hydra overrides before Hydra reads the command line.

Each command has a :class:`Vocabulary`: a bare positional argument becomes its main key
(``nuclei-tune CKPT`` -> ``ckpt_path=CKPT``) and its flags become keys (``--no-progress`` ->
``progress_bar=false``, ``--compare A B`` -> ``compare=['A','B']``); each rewrite is noted on
stderr. Every other argument reaches Hydra as it was typed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Hydra's own flags that take the next argument as their value (it is not a positional).
HYDRA_VALUE_FLAGS = frozenset(
    {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn"}
    | {"--config-dir", "-cd", "--experimental-rerun", "--info", "-i"}
)


_PLAIN = re.compile(r"[\w./~+-]+")


@dataclass(frozen=True)
class Vocabulary:
    """One command's own spellings and the keys they stand for.

    Attributes:
        main_key: a bare positional argument ``ARG`` becomes ``main_key='ARG'``.
        switches: a flag without a value and the override it stands for
            (``"--dry-run": "dry_run=true"``).
        options: a flag taking one value and its key (``"--out": "output"``).
        lists: a flag taking ``KEY=V1,V2`` items and the dict they fill
            (``"--grid": "grid"``: ``--grid threshold=0.4,0.5`` -> ``grid.threshold=[0.4,0.5]``).
        tuples: a flag taking a fixed number of values and the key of their list
            (``"--compare": ("compare", 2)``: ``--compare A B`` -> ``compare=['A','B']``).
    """

    main_key: str | None = None
    switches: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    lists: Mapping[str, str] = field(default_factory=dict)
    tuples: Mapping[str, tuple[str, int]] = field(default_factory=dict)


def quoted(value: str) -> str:
    """``value`` as a quoted Hydra string, so paths with ``=``, ``,`` or spaces stay whole."""
    return "'" + value.replace("'", "\\'") + "'"


def as_value(value: str) -> str:
    """``value`` as a Hydra value: as it is when plain (``5``, ``out/dir``), else quoted."""
    return value if _PLAIN.fullmatch(value) else quoted(value)


def is_positional(argument: str) -> bool:
    """Whether ``argument`` is a bare value (a path), not a flag or a ``key=value`` override:
    no ``=``, or a path (``/x/epoch=3.ckpt``, ``./a=b``, an existing file)."""
    if argument.startswith("-"):
        return False
    return "=" not in argument or argument.startswith(("/", ".", "~")) or Path(argument).exists()


def _list_items(arguments: list[str], start: int) -> int:
    """Index after the ``KEY=V1,V2`` items that follow a list flag at ``start - 1``."""
    end = start
    while end < len(arguments):
        key, sep, _ = arguments[end].partition("=")
        if not sep or not key.isidentifier():
            break
        end += 1
    return end


def _translate_flag(
    arguments: list[str], i: int, words: Vocabulary
) -> tuple[list[str], int] | None:
    """The overrides an old flag at ``arguments[i]`` stands for and the next index."""
    flag, has_value, inline = arguments[i].partition("=")
    if flag in words.switches and not has_value:
        return [words.switches[flag]], i + 1
    if flag in words.options:
        if has_value:
            return [f"{words.options[flag]}={as_value(inline)}"], i + 1
        if i + 1 < len(arguments):
            return [f"{words.options[flag]}={as_value(arguments[i + 1])}"], i + 2
    if flag in words.lists and not has_value:
        end = _list_items(arguments, i + 1)
        items = [item.partition("=") for item in arguments[i + 1 : end]]
        return [f"{words.lists[flag]}.{key}=[{values}]" for key, _, values in items], end
    if flag in words.tuples and not has_value:
        key, count = words.tuples[flag]
        values = arguments[i + 1 : i + 1 + count]
        if len(values) == count:  # quoted: each stays a string, spaces and '=' included
            return [f"{key}=[{','.join(quoted(v) for v in values)}]"], i + 1 + count
    return None


def translate_arguments(
    arguments: list[str], words: Vocabulary | None = None
) -> tuple[list[str], list[str]]:
    """The arguments as Hydra overrides, and one note per rewritten argument."""
    words = words or Vocabulary()
    translated: list[str] = []
    notes: list[str] = []
    positional_done = False
    i = 0
    while i < len(arguments):
        argument = arguments[i]
        flag = _translate_flag(arguments, i, words)
        if flag is not None:
            new, end = flag
            translated += new
            notes.append(f"{' '.join(arguments[i:end])} is now {' '.join(new) or 'nothing'}")
            i = end
            continue
        if argument in HYDRA_VALUE_FLAGS and i + 1 < len(arguments):
            translated += arguments[i : i + 2]
            i += 2
            continue
        if words.main_key and not positional_done and is_positional(argument):
            translated.append(f"{words.main_key}={quoted(argument)}")
            positional_done = True
            i += 1
            continue
        translated.append(argument)
        i += 1
    return translated, notes


def translate_command_line(words: Vocabulary | None = None) -> None:
    """Rewrite a command's own spellings in ``sys.argv`` in place, printing a note for each."""
    arguments, notes = translate_arguments(sys.argv[1:], words)
    for note in notes:
        print(f"nuclei: {note}", file=sys.stderr)
    sys.argv[1:] = arguments
