"""What the command line decides without Lightning: which checkpoint ``--ckpt_path last`` means, and its messages.

The parser's own messages for a wrong option name or class name are long (a union of types, a value dump); the
functions here turn them into one sentence that names the option and what is allowed, and find, in an error a
constructor raised while the parsed classes were built, the argument check that refused a value.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import get_loader, set_loader

__all__ = [
    "subcommands_to_build",
    "LIGHTNING_OPTIMIZER_OPTIONS",
    "optimizer_options_message",
    "refuse_lightning_optimizer_options",
    "save_dir_given",
    "check_data_of_checkpoint",
    "CALLBACK_ALIASES",
    "PARSER_MODE",
    "expand_short_callback_names",
    "expand_short_class_paths",
    "load_yaml",
    "EVALUATING_SUBCOMMANDS",
    "check_run_folder",
    "class_options",
    "constructor_error",
    "evaluated_checkpoint",
    "explain_parser_error",
    "newest_last_checkpoint",
]

#: The subcommands that evaluate a checkpoint's weights: they resolve ``--ckpt_path last`` and refuse none.
EVALUATING_SUBCOMMANDS = ("validate", "test", "predict")

_HELP_OPTIONS = ("-h", "--help")


def subcommands_to_build(args: Any, names: Iterable[str]) -> set[str]:
    """The subcommands whose full parser this start may read: the one named first in ``args``, or none for help alone.

    A parser is built for every subcommand, but only the one on the command line is ever parsed; the others are
    needed by name only (``lightning-cnn --help`` lists them). Anything else (a config file before the subcommand,
    ``args`` given as a dict) keeps every parser.

    Example:
        >>> sorted(subcommands_to_build(["fit", "--trainer.max_epochs", "3"], ["fit", "test"]))
        ['fit']
        >>> sorted(subcommands_to_build(["--help"], ["fit", "test"]))
        []
        >>> sorted(subcommands_to_build(["-c", "run.yaml", "fit"], ["fit", "test"]))
        ['fit', 'test']
    """
    names = set(names)
    if not isinstance(args, (list, tuple)):
        return names
    if args and args[0] in names:
        return {args[0]}
    if all(a in _HELP_OPTIONS for a in args):
        return set()
    return names


def newest_last_checkpoint(config: Any) -> Path:
    """The newest ``last*.ckpt`` of ``--checkpoint.dirpath``, the logger's run folders, or the root's checkpoints.

    Raises:
        FileNotFoundError: when there is none, saying where it looked.
    """
    dirpath = (config.get("checkpoint") or {}).get("dirpath")
    trainer = config.get("trainer") or {}
    args = getattr(trainer.get("logger"), "init_args", None)
    if dirpath:
        pattern, where = Path(dirpath).glob("last*.ckpt"), f"in --checkpoint.dirpath {dirpath}"
    elif args is not None:
        base = Path(args.get("save_dir") or ".") / (args.get("name") or "lightning_logs")
        version = args.get("version")
        folder = "version_*" if version is None else (version if isinstance(version, str) else f"version_{version}")
        pattern, where = base.glob(f"{folder}/checkpoints/last*.ckpt"), f"under {base}/{folder}/checkpoints/"
    else:  # no logger: Lightning's checkpoints go under the root folder
        root = Path(trainer.get("default_root_dir") or ".")
        pattern, where = root.glob("checkpoints/last*.ckpt"), f"in {root / 'checkpoints'}"
    found = sorted(pattern, key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(f"--ckpt_path last: no last.ckpt {where} to load.")
    return found[-1]


def _logger_folder(logger: Any) -> Path | None:
    """The run folder of a logger given a ``version`` (``save_dir/name/version_N``), else ``None``."""
    args = getattr(logger, "init_args", None)
    if args is None or args.get("version") is None or "save_dir" not in args:
        return None  # no logger, or the next free version: a folder of its own
    version = args.get("version")
    if isinstance(version, str) and version.isdigit():  # the parser makes "0" the int 0 when it builds the logger
        version = int(version)
    folder = version if isinstance(version, str) else f"version_{version}"
    name = args.get("name")
    return Path(args.get("save_dir") or ".") / (name or "") / folder


def check_run_folder(subcommand: str, config: Any) -> None:
    """Refuse a run given an earlier run's logger folder, unless ``fit`` resumes it (then its logger appends).

    A logger given a ``version`` (``--trainer.logger.init_args.version 0``) whose folder already holds files would
    have its checkpoints, ``config.yaml``, ``hparams.yaml`` and ``metrics.csv`` overwritten by the new run, or mixed
    with them. ``fit`` with ``--ckpt_path`` continues that run: a logger with a ``resume`` option (the default one)
    gets ``resume=True`` and keeps the rows of its ``metrics.csv``.

    Raises:
        FileExistsError: before anything is written, naming the folder and what to do instead.
    """
    trainer = config.get("trainer") or {}
    logger = trainer.get("logger")
    folder = _logger_folder(logger)
    if folder is None or not folder.is_dir() or not any(folder.iterdir()):
        return
    args = getattr(logger, "init_args", {})
    if subcommand == "fit" and config.get("ckpt_path"):
        cls = _import(str(getattr(logger, "class_path", "")))
        if "resume" in args or (cls is not None and "resume" in class_options(cls)):
            args["resume"] = True
        return
    found = ", ".join(sorted(p.name for p in folder.iterdir()))
    version = args.get("version")
    resume = " or fit --ckpt_path last to resume that run" if subcommand == "fit" else ""
    raise FileExistsError(
        f"--trainer.logger.init_args.version {version}: the run folder {folder} holds an earlier run's files"
        f" ({found}), which this {subcommand} would overwrite. Give another version (or none: the next free one),"
        f"{resume}."
    )


def evaluated_checkpoint(subcommand: str, config: Any) -> Path | None:
    """Resolve ``--ckpt_path last`` to the newest run's ``last.ckpt``; refuse no ``--ckpt_path`` (untrained weights).

    Lightning resolves ``last`` only from the checkpoints of the running Trainer, which a fresh ``test``, ``validate``
    or ``predict`` has none of: it would evaluate the initial weights. Here ``last`` means the ``last.ckpt`` that
    ``fit --ckpt_path last`` resumes from, and the config's ``ckpt_path`` becomes that file.

    Returns:
        The resolved file for ``last``, else ``None``.

    Raises:
        ValueError: without ``--ckpt_path`` unless ``--allow_untrained true``.
        FileNotFoundError: for ``last`` when there is no ``last.ckpt``.
    """
    ckpt_path = config.get("ckpt_path")
    if not ckpt_path:
        if config.get("allow_untrained"):
            return None
        raise ValueError(
            f"lightning-cnn {subcommand} without --ckpt_path would use the model's initial, untrained weights. Give"
            " --ckpt_path PATH (a checkpoint), --ckpt_path last (the newest run's last.ckpt), or"
            " --allow_untrained true to evaluate them all the same."
        )
    if ckpt_path != "last":
        return None
    found = newest_last_checkpoint(config)
    config["ckpt_path"] = str(found)
    return found


def class_options(cls: type) -> list[str]:
    """The constructor arguments of ``cls``, those it passes on with ``**kwargs`` to its bases included."""
    names: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names += [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return list(dict.fromkeys(names))


def _import(class_path: str) -> type | None:
    module, _, name = class_path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None
    return found if isinstance(found, type) else None


_KEY = re.compile(r"""Parser key ["']([\w.]+)["']""")
_UNKNOWN_OPTION = re.compile(r"Problem with given class_path '([\w.]+)':\s*Option '(\w+)' is not accepted")
_UNKNOWN_CLASS = re.compile(r"Expected a dot import path string: (\S+)")
_OPTIMIZER_KEY = re.compile(r"(?:does not accept option|Option) '(optimizer|lr_scheduler)\b[\w.]*'")
_BAD_CHOICE = re.compile(r'Parser key "(\w+)":\s*Expected a typing\.Literal\[(.*?)\]\. Got value: (\S+)')


def _suggest(value: str, names: list[str]) -> str:
    lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(value.lower(), list(lower), n=3, cutoff=0.6)
    return f" Did you mean {' or '.join(repr(lower[c]) for c in close)}?" if close else ""


def explain_parser_error(message: str, choices: Mapping[str, Iterable[type]], command: str = "lightning-cnn") -> str:
    """One sentence for the parser's message about an unknown option of a class or an unknown class name.

    Args:
        message: what the parser says.
        choices: the classes each group offers by short name (``{"model": [SimpleCNN, ...]}``).
        command: the command line, for the help it points to.

    Returns:
        The sentence; the message itself when it is about something else.

    Example:
        >>> class Net:
        ...     def __init__(self, activation: str = "relu", width: int = 8): ...
        >>> text = "Parser key 'model': Problem with given class_path 'x.Net': Option 'activaton' is not accepted"
        >>> explain_parser_error(text, {"model": [Net]}).splitlines()[0]
        "--model: Net has no option 'activaton'. Did you mean 'activation'? Its options: activation, width."
    """
    optimizer = _OPTIMIZER_KEY.search(message)
    if optimizer:  # ``optimizer:`` or ``lr_scheduler:`` in a config file
        return optimizer_options_message(f"the config key {optimizer.group(1)!r}")
    key = _KEY.search(message)
    group = key.group(1) if key else ""
    unknown = _UNKNOWN_OPTION.search(message)
    if unknown:
        class_path, option = unknown.groups()
        name = class_path.rpartition(".")[2]
        cls = _import(class_path) or next((c for c in choices.get(group, ()) if c.__name__ == name), None)
        options = class_options(cls) if cls is not None else []
        listed = f" Its options: {', '.join(options)}." if options else ""
        lead = f"--{group}: {name} has no option {option!r}.{_suggest(option, options)}{listed}"
        return lead
    choice = _BAD_CHOICE.search(message)
    if choice:
        option, listed, value = choice.groups()
        names = [n.strip().strip("'\"") for n in listed.split(",")]
        where = f"--{group}.{option}" if group else f"--{option}"
        return f"Expected {where} to be one of {tuple(names)}, but got {value!r}.{_suggest(value, names)}"
    missing = _UNKNOWN_CLASS.search(message)
    if missing and group in choices:
        names = [c.__name__ for c in choices[group]]
        value = missing.group(1)
        lead = (
            f"--{group} {value}: no such {group} class.{_suggest(value, names)} The {group} classes: "
            f"{', '.join(names)} (or the import path of your own subclass, such as mypackage.My{group.title()};"
            f" {command} --help lists each one's options)."
        )
        return lead
    return message


def constructor_error(error: BaseException, owners: Mapping[str, type]) -> tuple[str, BaseException] | None:
    """The ``(group, cause)`` of an error a constructor raised while the parsed classes were built, or ``None``.

    Follows the chain of causes to its first ``ValueError`` or ``TypeError`` and looks, in the frames it was raised
    through, for an object of one of the ``owners`` types (``{"model": LightningModule, ...}``): that is the class
    that refused one of its arguments. An error raised elsewhere (a bug, not a bad value) gives ``None``.
    """
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for cause in reversed(chain):  # the innermost first: where the check raised
        if not isinstance(cause, (ValueError, TypeError)):
            continue
        for frame, _ in traceback.walk_tb(cause.__traceback__):
            owner = frame.f_locals.get("self")
            for group, kind in owners.items():
                if isinstance(owner, kind):
                    return group, cause
    return None


# Short names that Lightning uses too: on the command line they mean ours.
CALLBACK_ALIASES = {
    "EarlyStopping": "lightning_cnn.EarlyStopping",
    "EMAWeightAveraging": "lightning_cnn.EMAWeightAveraging",
}


def expand_short_callback_names(argv: list[str]) -> list[str]:
    """Make ``--trainer.callbacks+=EarlyStopping`` mean ours: jsonargparse refuses a short name two classes share."""
    out: list[str] = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if eq and key.startswith("--trainer.callbacks") and value in CALLBACK_ALIASES:
            arg = f"{key}={CALLBACK_ALIASES[value]}"
        elif not eq and arg in CALLBACK_ALIASES and out and out[-1].startswith("--trainer.callbacks"):
            arg = CALLBACK_ALIASES[arg]
        out.append(arg)
    return out


def expand_short_class_paths(value: Any) -> Any:
    """Make ``class_path: EarlyStopping`` in a config file (or a YAML value) mean ours, as on the command line."""
    if isinstance(value, dict):
        value = {k: expand_short_class_paths(v) for k, v in value.items()}
        if value.get("class_path") in CALLBACK_ALIASES:
            value["class_path"] = CALLBACK_ALIASES[value["class_path"]]
    elif isinstance(value, list):
        value = [expand_short_class_paths(v) for v in value]
    return value


def load_yaml(text: str) -> Any:
    """The YAML loader of jsonargparse, then the short class names that Lightning uses too expanded to ours."""
    return expand_short_class_paths(get_loader("yaml")(text))


#: The parser mode of the command line: YAML, with the short-name expansion (jsonargparse's public ``set_loader``).
PARSER_MODE = "lightning_cnn_yaml"
set_loader(PARSER_MODE, load_yaml, (yaml.YAMLError,))


def check_data_of_checkpoint(data: Any, ckpt_path: Path | None, data_given: bool) -> None:
    """Refuse evaluating a checkpoint on the default data when it was trained on another DataModule.

    ``lightning-cnn predict --ckpt_path CKPT`` with ``--data`` forgotten would run the model on the bundled digits
    (the default) and write plausible predictions. When no ``--data`` (nor a config file) was given and the
    checkpoint names the DataModule class it was trained with, that class must be the one configured.

    Raises:
        ValueError: naming the checkpoint, both classes and the options to pass.
    """
    if data_given or ckpt_path is None or data is None:
        return
    from lightning_cnn._utils.io import load_checkpoint_file

    saved = dict(load_checkpoint_file(ckpt_path).get("datamodule_hyper_parameters") or {})
    theirs, ours = saved.pop("_class_path", None), str(data.get("class_path", ""))
    if theirs is None or theirs.rsplit(".", 1)[-1] == ours.rsplit(".", 1)[-1]:
        return
    options = " ".join(f"--data.{k} {v}" for k, v in saved.items() if not k.startswith("_") and v is not None)
    raise ValueError(
        f"--ckpt_path {ckpt_path} was trained with --data {theirs.rsplit('.', 1)[-1]}, but no --data was given, so"
        f" this run would use the default {ours.rsplit('.', 1)[-1]}. Pass --data {theirs.rsplit('.', 1)[-1]} and"
        f" its options (trained with: {options or 'the defaults'})."
    )


#: LightningCLI's optimizer and scheduler options, which ``lightning-cnn`` leaves to the model's own.
LIGHTNING_OPTIMIZER_OPTIONS = ("--optimizer", "--lr_scheduler")


def optimizer_options_message(option: str, value: str | None = None) -> str:
    """Why ``--optimizer`` / ``--lr_scheduler`` (or ``optimizer:`` in a config file) is refused, and what to use.

    Example:
        >>> optimizer_options_message("--optimizer", "SGD").split(":")[0]
        '--optimizer SGD'
    """
    given = f"{option} {value}" if value else option
    return (
        f"{given}: lightning-cnn takes the optimizer and the learning-rate schedule from the model, which builds"
        " them with its own parameter groups (no weight decay on norms and biases). Use --model.optimizer NAME"
        " (sgd, adamw, ...; with --model.lr and --model.weight_decay) instead of --optimizer, and"
        " --model.scheduler NAME (cosine, ...) instead of --lr_scheduler (in a config file: model.init_args.optimizer"
        " and model.init_args.scheduler); lightning-cnn fit --model.help SimpleCNN lists the names."
    )


def refuse_lightning_optimizer_options(argv: Sequence[str], error: Callable[[str], Any]) -> None:
    """Call ``error`` with :func:`optimizer_options_message` for the first ``--optimizer*`` / ``--lr_scheduler*``."""
    for i, arg in enumerate(argv):
        key, eq, value = arg.partition("=")
        for option in LIGHTNING_OPTIMIZER_OPTIONS:
            if key == option or key.startswith(f"{option}."):
                value = value if eq else (argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("-") else "")
                error(optimizer_options_message(key, value or None))


def _logger_save_dir(logger: Any) -> bool:
    if not isinstance(logger, dict):
        return False
    args = logger.get("init_args")
    return "save_dir" in logger or (isinstance(args, dict) and "save_dir" in args)


def save_dir_given(argv: Sequence[str]) -> bool:
    """Whether the command line or a config file it names gives the logger a ``save_dir``.

    Looks at ``--trainer.logger.save_dir`` (``init_args`` or not), at a ``--trainer.logger`` value, and at the
    ``trainer.logger`` of every ``-c`` / ``--config`` file (and the ``logger`` of a ``--trainer`` file).
    """
    for i, arg in enumerate(argv):
        key, eq, value = arg.partition("=")
        if key.startswith("--trainer.logger.") and key.endswith("save_dir"):
            return True
        if key not in ("-c", "--config", "--trainer", "--trainer.logger"):
            continue
        value = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
        path = Path(value)
        try:
            loaded = yaml.safe_load(path.read_text() if path.is_file() else value)
        except (OSError, ValueError, yaml.YAMLError):
            continue
        if not isinstance(loaded, dict):
            continue
        logger: Any = loaded
        if key == "--trainer":
            logger = loaded.get("logger")
        elif key != "--trainer.logger":
            trainer = loaded.get("trainer")
            logger = trainer.get("logger") if isinstance(trainer, dict) else None
        if _logger_save_dir(logger):
            return True
    return False
