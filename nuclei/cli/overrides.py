"""Command-line overrides written for an older layout of the configs keep working.

``data.root=...``, ``data.image_size=...`` and the other flat data keys of nuclei 0.1 are
rewritten to their grouped names (``data.source.root``, ``data.size.image_size``; see
:data:`nuclei.data.legacy_keys.LEGACY_DATA_KEYS`) before Hydra reads the command line, with a
note on standard error saying what each became.
"""

from __future__ import annotations

import sys

from nuclei.data.legacy_keys import translate_legacy_override


def translate_arguments(arguments: list[str]) -> tuple[list[str], list[str]]:
    """The arguments with legacy overrides renamed, and one note per renamed override."""
    translated, notes = [], []
    for argument in arguments:
        new, note = translate_legacy_override(argument)
        translated.append(new)
        if note:
            notes.append(note)
    return translated, notes


def translate_command_line() -> None:
    """Rename legacy overrides in ``sys.argv`` in place, printing a note for each."""
    arguments, notes = translate_arguments(sys.argv[1:])
    for note in notes:
        print(f"nuclei: {note}", file=sys.stderr)
    sys.argv[1:] = arguments
