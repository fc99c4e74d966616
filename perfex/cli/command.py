"""The ``perfex`` command: one entry point for what the top-level scripts run.

``perfex train --model cnn ...`` runs exactly what ``python 1dcnn_train.py ...`` runs: the same ``main`` with the same
arguments. This module parses only the command name and ``--model``; every other flag is parsed, and documented in
``--help``, by the script's own parser. Nothing heavy is imported before a command is chosen.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from models.registry import MODELS as REGISTRY
from models.registry import families

MODELS = families()
SCRIPT_PREFIX = {name: REGISTRY[name].script_prefix for name in MODELS}


def model_scripts(command: str) -> str:
    """The scripts a model command stands for: '1dcnn_train.py, attn_train.py'."""
    return ", ".join(f"{SCRIPT_PREFIX[name]}_{command}.py" for name in MODELS)


def model_titles() -> str:
    """'cnn: the multi-scale 1D-CNN, attn: the hybrid attention network' (titles up to their first parenthesis)."""
    return ", ".join(f"{name}: the {REGISTRY[name].title.split(' (')[0]}" for name in MODELS)


# name -> (one line of help, the scripts it stands for, takes --model)
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "train": ("train a model from scratch", model_scripts("train"), True),
    "retrain": ("fine-tune a checkpoint on new ratings (a user study)", model_scripts("retrain"), True),
    "test": ("evaluate a checkpoint on held-out clips beside baselines", model_scripts("test"), True),
    "deploy": ("predict trait levels for every clip of new input", model_scripts("deploy"), True),
    "augment": ("write augmented copies of PerFeX clips, with provenance", "data_augmentation.py", False),
    "analyse": ("correlate per-clip AU statistics with the traits", "au_analysis.py", False),
    "study": ("user study: select clips to rate, then collect the ratings", "user_study.py", False),
}


def overview() -> str:
    from ..core import __version__

    width = max(map(len, COMMANDS))
    lines = [f"usage: perfex COMMAND [--model {'|'.join(MODELS)}] [options]",
             "",
             f"PerFeX {__version__}: Big Five personality traits from facial Action Unit time series.",
             "",
             "commands:"]
    lines += [f"  {name:<{width}}  {text} ({scripts})" for name, (text, scripts, _) in COMMANDS.items()]
    lines += ["",
              f"train, retrain, test and deploy need --model {'|'.join(MODELS)} ({model_titles()}).",
              "'perfex COMMAND --help' lists a command's options; they are the script's."]
    return "\n".join(lines)


def fail(message: str) -> int:
    """One line on stderr and exit status 2, as the scripts do for bad input."""
    print(f"perfex: error: {message}", file=sys.stderr)
    return 2


def split_model(args: Sequence[str]) -> tuple[str | None, list[str], str | None]:
    """``--model NAME`` or ``--model=NAME`` taken out of ``args`` (up to a ``--``): (model, the other args, error)."""
    rest: list[str] = []
    model = None
    items = iter(enumerate(args))
    for i, arg in items:
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg == "--model" or arg.startswith("--model="):
            if arg == "--model":
                value = next(items, (None, None))[1]
                if value is None:
                    return None, rest, "--model needs a value: " + " or ".join(MODELS)
            else:
                value = arg.split("=", 1)[1]
            if value not in MODELS:
                return None, rest, f"--model {value!r}: choose {' or '.join(MODELS)}"
            if model is not None and value != model:
                return None, rest, f"--model given twice ({model}, {value})"
            model = value
            continue
        rest.append(arg)
    return model, rest, None


def dispatch(command: str, model: str | None, args: list[str]) -> Callable[[], None]:
    """The call the command's script makes, with ``args`` in place of ``sys.argv[1:]``."""
    if command in ("train", "retrain", "test", "deploy", "augment"):
        from . import scripts as cli

        if command == "augment":
            return lambda: cli.main("augment", argv=args)
        return lambda: cli.main(command, model=model, argv=args)
    if command == "analyse":
        from . import analysis

        return lambda: analysis.main(args)
    from . import study

    return lambda: study.main(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``perfex`` console script. Returns its exit status where it does not exit itself: the
    commands exit with their script's status (2 and one line on stderr for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        return fail("no command given; run 'perfex --help' for the list")
    command, args = argv[0], argv[1:]
    if command in ("-h", "--help"):
        print(overview())
        return 0
    if command == "--version":
        from ..core import __version__

        print(f"perfex {__version__}")
        return 0
    if command not in COMMANDS:
        return fail(f"unknown command {command!r}; choose from {', '.join(COMMANDS)} (perfex --help)")
    takes_model = COMMANDS[command][2]
    model, args, error = split_model(args) if takes_model else (None, args, None)
    if error:
        return fail(f"{command}: {error}")
    prog = f"perfex {command}"
    if takes_model:
        if model is None:
            if not any(a in ("-h", "--help") for a in args):
                return fail(f"{command} needs --model {'|'.join(MODELS)} ({model_titles()})")
            print(f"perfex {command} --model {'|'.join(MODELS)} [options]: the options are the same for every model "
                  f"and are shown for --model {MODELS[0]} ({SCRIPT_PREFIX[MODELS[0]]}_{command}.py).\n")
            model = MODELS[0]
        prog = f"perfex {command} --model {model}"
    run = dispatch(command, model, args)
    # The scripts' parsers and their one-line errors name the program after sys.argv[0]: name it as typed.
    saved = sys.argv[:1]
    sys.argv[:1] = [prog]
    try:
        run()
    finally:
        sys.argv[:1] = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
