"""What every command shares: its own spellings, a check of the keys given, one way to fail.

Each ``nuclei-*`` command is a Hydra app described by an :class:`App`. :func:`run_app`
rewrites its own spellings (:mod:`nuclei.cli.overrides`), composes the configuration once
to catch a mistyped key before Hydra's runner prints a traceback ("did you mean
'data.size.image_size'?"), then runs the app. Inside the app, :func:`user_errors` turns the
errors a user can fix (bad data, a bad checkpoint, a bad option value, a missing file) into
the message alone on stderr and exit status 2. ``HYDRA_FULL_ERROR=1`` shows tracebacks.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hydra import compose, initialize_config_module
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nuclei.cli.console import quiet_known_noise
from nuclei.cli.overrides import Vocabulary, translate_command_line
from nuclei.cli.stops import stop_on_signals
from nuclei.data.sources.io import ImageReadError
from nuclei.data.sources.rle import RLEError
from nuclei.data.sources.solution import SolutionError
from nuclei.data.validation import DataValidationError
from nuclei.files import DiskFullError
from nuclei.inference.probabilities import DeviceError
from nuclei.runs.checkpoint import CheckpointError
from nuclei.runs.run_data import RunDataError
from nuclei.runtime import keep_freed_memory
from nuclei.training.mlflow_logger import MissingOptionalDependencyError

#: Exit status of a command stopped by an error the user can fix.
USER_ERROR_STATUS = 2
#: Errors a user can fix by changing the data, the checkpoint or the command line
#: (``LayoutError`` is a ``FileNotFoundError``). A ``ValueError`` is one too when a config
#: dataclass raised it while checking an option (see :func:`is_user_error`).
USER_ERRORS: tuple[type[BaseException], ...] = (
    CheckpointError,
    DataValidationError,
    DeviceError,
    DiskFullError,
    FileNotFoundError,
    ImageReadError,
    MissingOptionalDependencyError,
    RLEError,
    RunDataError,
    SolutionError,
)
#: Hydra's options that compose nothing to check here (help, info, multirun, configs from
#: another folder, e.g. a run's own ``--config-path=<run>/.hydra --config-name=config``).
_NO_PRECHECK = (
    "help",
    "hydra_help",
    "info",
    "shell_completion",
    "multirun",
    "config_dir",
    "config_path",
)
_BAD_KEY = re.compile(
    r"Could not override '([^']+)'|Key '[^']+' is not in struct\s+full_key: (\S+)"
)


@dataclass(frozen=True)
class App:
    """A command: its name, its primary config and its own spellings."""

    name: str
    config_name: str
    words: Vocabulary = field(default_factory=Vocabulary)


def full_error_wanted() -> bool:
    """Whether the user asked for tracebacks (``HYDRA_FULL_ERROR=1``)."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def _raised_checking_options(exc: BaseException) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return any(frame.name == "__post_init__" for frame in frames)


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    while exc is not None and all(exc is not seen for seen in chain):
        chain.append(exc)
        exc = exc.__cause__
    return chain


def is_user_error(exc: BaseException, also: tuple[type[BaseException], ...] = ()) -> bool:
    """Whether ``exc`` (or the error it wraps, e.g. in Hydra's instantiate) is one the user
    can fix: one of :data:`USER_ERRORS` or ``also``, or a ``ValueError`` raised by a
    dataclass's ``__post_init__`` checking an option."""
    return any(
        isinstance(error, USER_ERRORS + also)
        or (isinstance(error, ValueError) and _raised_checking_options(error))
        for error in _chain(exc)
    )


def user_error_message(exc: BaseException, also: tuple[type[BaseException], ...] = ()) -> str:
    """The message to show for a user error: that of the outermost error in the chain that
    says it in words (a ``ValueError`` or a listed type, not a wrapper such as Hydra's)."""
    for error in _chain(exc):
        if isinstance(error, (ValueError, *USER_ERRORS, *also)):
            return str(error)
    return str(exc)


def report_error(app_name: str, message: str) -> None:
    """Print ``app_name: message`` on stderr and into the job's log files, if any."""
    print(f"{app_name}: {message}", file=sys.stderr)
    record = logging.makeLogRecord({"name": app_name, "levelno": logging.ERROR, "msg": message})
    record.levelname = "ERROR"
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


@contextmanager
def user_errors(app_name: str, *also: type[BaseException]) -> Iterator[None]:
    """End the command with the message alone and exit status 2 on an error the user can
    fix (:func:`is_user_error`, plus the types ``also``); other errors propagate."""
    try:
        yield
    except Exception as exc:
        if full_error_wanted() or not is_user_error(exc, also):
            raise
        report_error(app_name, user_error_message(exc, also))
        raise SystemExit(USER_ERROR_STATUS) from None


def flat_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    """Every key of ``cfg`` as a dotted path, sections included (``data``, ``data.size``...)."""
    keys = []
    for key, value in OmegaConf.to_container(cfg, resolve=False).items():
        path = f"{prefix}{key}"
        keys.append(path)
        if isinstance(value, dict):
            keys += flat_keys(OmegaConf.create(value), f"{path}.")
    return keys


def did_you_mean(key: str, keys: list[str]) -> str | None:
    """The key of ``keys`` closest to a mistyped ``key``, if one is close enough."""
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    return close[0] if close else None


def _compose(config_name: str, overrides: list[str]) -> DictConfig:
    with initialize_config_module(config_module="nuclei.conf", version_base="1.3"):
        return compose(config_name, overrides=overrides)


def _composition_message(exc: BaseException) -> str:
    lines = str(exc).split("Config search path:")[0].rstrip().splitlines()
    cause = exc.__cause__
    if cause is not None:
        lines += [line for line in str(cause).splitlines() if line and not line[0].isspace()]
    return "\n".join(line for line in lines if not line.startswith("To append"))


def _suggestion(config_name: str, overrides: list[str], message: str) -> str | None:
    found = _BAD_KEY.search(message)
    if found is None:
        return None
    bad = found[1] or found[2]
    others = [o for o in overrides if o.lstrip("+~").partition("=")[0] != bad]
    for attempt in (others, []):
        try:
            return did_you_mean(bad, flat_keys(_compose(config_name, attempt)))
        except (HydraException, OmegaConfBaseException):
            continue
    return None


def _lexer_message(message: str, overrides: list[str]) -> str | None:
    """One line for an override Hydra's grammar cannot read (a non-ASCII or special
    character in an unquoted value), with the quoted spelling that works."""
    if "LexerNoViableAltException" not in message and "token recognition" not in message:
        return None
    for override in overrides:
        key, equals, value = override.partition("=")
        if equals and override in message and not (value[:1] in "'\"" and value):
            return (
                f"{override}: the value cannot be read unquoted (non-ASCII or special "
                f"characters); quote it, e.g. '{key}=\"{value}\"'"
            )
    return None


def _missing_keys(cfg: DictConfig) -> list[str]:
    """The top-level keys of ``cfg`` left at ``???`` (what the command needs to be told)."""
    return [str(key) for key in cfg if OmegaConf.is_missing(cfg, key)]


def check_overrides(app: App, arguments: list[str]) -> str | None:
    """Why the command line does not compose (with a "did you mean"), or None when it does
    or when Hydra will not compose it as one job (help, multirun, another config folder)."""
    from hydra._internal.utils import get_args_parser  # Hydra's own reading of the flags

    args, _ = get_args_parser().parse_known_args(arguments)
    if any(getattr(args, name, None) for name in _NO_PRECHECK) or args.experimental_rerun:
        return None
    config_name = args.config_name or app.config_name
    try:
        cfg = _compose(config_name, args.overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        message = _composition_message(exc)
        unreadable = _lexer_message(message, args.overrides)
        if unreadable is not None:
            return unreadable
        suggestion = _suggestion(config_name, args.overrides, message)
        return message + (f"\ndid you mean '{suggestion}'?" if suggestion else "")
    missing = _missing_keys(cfg)
    if missing:
        keys = " ".join(f"{key}=..." for key in missing)
        return f"{', '.join(missing)} must be given: {app.name} {keys} (see {app.name} --help)"
    return None


def run_app(app: App, hydra_main: Callable[[], Any]) -> None:
    """Run a Hydra app from the command line: its own spellings rewritten, keys checked, freed
    memory kept for reuse (:func:`nuclei.runtime.keep_freed_memory`: CPU passes 1.9x faster),
    SIGTERM stopping it as Ctrl-C does (:func:`nuclei.cli.stops.stop_on_signals`: exit 143),
    Lightning's advertisements and known deprecations silenced
    (:func:`nuclei.cli.console.quiet_known_noise`)."""
    with stop_on_signals(app.name, report_error):
        keep_freed_memory()
        quiet_known_noise()
        translate_command_line(app.words)
        if not full_error_wanted():
            problem = check_overrides(app, sys.argv[1:])
            if problem is not None:
                report_error(app.name, problem)
                raise SystemExit(USER_ERROR_STATUS)
        hydra_main()


def command(app: App, hydra_main: Callable[..., Any], summary: str) -> Callable[..., Any]:
    """The console-script function of ``app``: ``main()`` reads the command line (through
    :func:`run_app`), ``main(cfg)`` runs a composed config as it is and returns its result."""

    def main(cfg: DictConfig | None = None) -> Any:
        if cfg is not None:
            return hydra_main(cfg)
        run_app(app, hydra_main)
        return None

    main.__doc__ = (
        f"``{app.name}``: {summary}\n\n"
        "A composed ``cfg`` is run as it is, without reading the command line."
    )
    main.__name__ = main.__qualname__ = "main"
    return main
