"""featkit's command line (installed as ``featkit.cli``; console script ``featkit``).

Commands are thin: parse, validate, call one library function. :func:`main` turns featkit's
errors into one line on stderr and the exit codes the README promises:
0 success, 1 failure, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import sys
import traceback
import warnings

from featkit.cli._common import err_console, state
from featkit.errors import FeatkitError, FeatkitWarning

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and, as a console script, exits with) the exit code."""
    from featkit.cli.app import app

    state.debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    warnings.showwarning = _show_warning
    try:
        result = app(args=argv, prog_name="featkit", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except KeyboardInterrupt:
        err_console.print("interrupted")
        code = 130
    except FeatkitError as exc:
        if state.debug:
            traceback.print_exc()
        err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
        code = 1
    except OSError as exc:
        if state.debug:
            traceback.print_exc()
        where = f": {exc.filename}" if exc.filename else ""
        err_console.print(f"error: {exc.strerror or exc}{where}", markup=False, soft_wrap=True)
        code = 1
    except Exception as exc:  # noqa: BLE001 - never show users a raw traceback unless asked
        kind = _cli_exception_kind(exc)
        if kind == "usage":
            exc.show()
            return _finish(exc.exit_code, argv)
        if kind == "exit":
            return _finish(exc.exit_code, argv)
        if kind == "abort":
            err_console.print("interrupted")
            return _finish(130, argv)
        if state.debug:
            traceback.print_exc()
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        err_console.print(
            f"error: {type(exc).__name__}: {message} (this is a featkit bug; rerun with --debug for the traceback)",
            markup=False,
            soft_wrap=True,
        )
        code = 1
    return _finish(code, argv)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings featkit raises on purpose are one ``warning:`` line; others keep their origin."""
    text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
    if issubclass(category, FeatkitWarning):
        err_console.print(f"warning: {text}", markup=False, soft_wrap=True)
    else:
        err_console.print(f"warning: {category.__name__}: {text} ({filename}:{lineno})", markup=False, soft_wrap=True)


def _cli_exception_kind(exc: BaseException) -> str | None:
    """Classify the CLI framework's control-flow exceptions by name, so featkit works with
    Click and with the copy of Click that newer Typer releases vendor."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "ClickException" in names and hasattr(exc, "show"):
        return "usage"
    if "Exit" in names and hasattr(exc, "exit_code"):
        return "exit"
    if "Abort" in names:
        return "abort"
    return None


def _finish(code: int, argv: list[str] | None) -> int:
    if argv is None:
        sys.exit(code)
    return code


def __getattr__(name: str):
    if name == "app":
        from featkit.cli.app import app

        return app
    raise AttributeError(name)
