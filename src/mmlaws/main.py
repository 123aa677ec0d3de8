"""Entry point: ``python -m mmlaws.main --gin_file=configs/X.gin [--gin_param=K=V] ...``.

A gin file is a local path or the name of a packaged config (``--gin_file=quickstart.gin``
from any folder; :mod:`mmlaws.config_files`).
``mmlaws plan ...`` (first argument ``plan``) is the run planner's command line instead
(:mod:`mmlaws.plan.cli`; also a gin job, ``configs/plan/plan.gin``).

Gin files (T5X style, ``from __gin__ import dynamic_registration``) bind ``main.run.job`` to the
function to run and configure it; library code stays undecorated. Several files compose in order,
then ``--gin_param`` bindings apply. Configuration and input errors print one line and exit 2;
so does a macro bound on the command line that no config uses (``STEPZ=5`` for ``STEPS``).
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util  # noqa: F401  (gin's file loader needs it imported)
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import gin

from mmlaws import config_files
from mmlaws.errors import ConfigError, UserError


def run(job: Callable[[], Any], setup: Sequence[Callable[[], Any]] = ()) -> Any:
    """Runs the configured job (bound in gin as ``main.run.job = @module.function``), after the
    ``setup`` callables (``main.run.setup = [@runtime.configure]``: process settings that must
    precede JAX's start, such as XLA flags and the compilation cache)."""
    for step in setup:
        step()
    return job()


def _one_line(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    if not lines:
        return type(err).__name__
    head, rest = lines[0], lines[1:]
    return f"{head} ({'; '.join(rest)})" if rest else head


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mmlaws", description=__doc__.splitlines()[0])
    parser.add_argument("--gin_file", action="append", default=[], help="gin file (repeatable)")
    parser.add_argument("--gin_param", action="append", default=[], help="gin binding K=V")
    parser.add_argument(
        "--gin_search_path", action="append", default=[], help="extra folder for gin includes"
    )
    return parser.parse_args(argv)


def _load_config(args: argparse.Namespace) -> None:
    if not args.gin_file:
        raise UserError("no --gin_file given (try --gin_file=quickstart.gin)")
    files = [config_files.find(path, args.gin_search_path) for path in args.gin_file]
    include_root = config_files.include_root()
    for path in [*args.gin_search_path, *([include_root] if include_root else [])]:
        gin.add_config_file_search_path(path)
    gin.parse_config_files_and_bindings(files, args.gin_param, finalize_config=True)
    _check_macros_used(args.gin_param)


def _check_macros_used(params: Sequence[str]) -> None:
    """``ConfigError`` naming the macros bound in ``params`` (``NAME=value``) that no binding
    refers to as ``%NAME``: a typo would otherwise leave the default in force."""
    from gin import config as gin_config

    bound = [m.group(1) for p in params if (m := re.match(r"\s*([A-Za-z_][\w/]*)\s*=", p))]
    macro = gin_config.get_configurable(gin_config.macro)
    used = {ref.scoped_selector.removesuffix("/gin.macro")
            for ref in gin_config.iterate_references(gin_config._CONFIG, to=macro)}
    unused = [name for name in bound if name not in used]
    if unused:
        hints = [f"{n}: did you mean {close[0]}?" for n in unused
                 if (close := difflib.get_close_matches(n, used, n=1))]
        raise ConfigError(f"--gin_param: macro(s) {', '.join(unused)} bound but used by no "
                          f"config" + (f" ({'; '.join(hints)})" if hints else "")
                          + f"; the configs' macros: {', '.join(sorted(used))}")


def main(argv: Sequence[str] | None = None) -> int:
    """Parses flags and gin, runs the job; returns the process exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["plan"]:
        from mmlaws.plan.cli import main as plan_main

        return plan_main(argv[1:])
    args = _parse_args(argv)
    try:
        _load_config(args)
    except UserError as err:
        print(f"mmlaws: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except (ValueError, OSError, SyntaxError, TypeError, RuntimeError) as err:
        print(f"mmlaws: config error: {_one_line(err)}", file=sys.stderr)
        return 2
    import mmlaws.main as entry  # the registered `run`, also when this file runs as __main__

    try:
        gin.get_configurable(entry.run)()
    except UserError as err:  # gin appends "In call to configurable ..." lines: keep ours
        print(f"mmlaws: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        if "Required bindings" not in str(err):
            raise
        print(f"mmlaws: config error: {_one_line(err)}", file=sys.stderr)
        return 2
    return 0


def console_main() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console_main()
