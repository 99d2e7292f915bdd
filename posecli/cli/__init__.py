"""The `posecli` command: one typer app, one thin module per subcommand (argument parsing only).

Each subcommand module defines `register(app)`; the work lives in library functions.
User errors (PoseCliError) become one red line and exit code 2; `--debug` shows the traceback.
Help is plain text (no rich markup, so `[batch, window, 17, 3]` in a docstring stays as written),
`-h` works everywhere, and `--install-completion` / `--show-completion` set up shell completion.
"""

from __future__ import annotations

import sys
import traceback
import warnings

import typer
from rich.console import Console
from rich.text import Text

from posecli import __version__
from posecli.errors import EXIT_USER_ERROR, PoseCliError, PoseCliWarning

CONTEXT = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(
    name="posecli",
    help="3D human pose estimation that gets its strength from 2D pretraining.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=CONTEXT,
)
err_console = Console(stderr=True)
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"posecli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    _state["debug"] = debug


def _register_all() -> None:
    if _state.get("registered"):
        return
    _state["registered"] = True
    from posecli.cli import eval as eval_cmd
    from posecli.cli import infer, prepare, train

    for module in (prepare, train, eval_cmd, infer):
        module.register(app)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """PoseCliWarnings as one yellow line (others keep Python's format)."""
    if issubclass(category, PoseCliWarning):
        err_console.print(f"[bold yellow]warning:[/] {message}", highlight=False, soft_wrap=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


_python_showwarning = warnings.showwarning


def main(argv: list[str] | None = None) -> None:
    _register_all()
    warnings.showwarning = _show_warning
    try:
        app(args=argv, prog_name="posecli", standalone_mode=True)
    except PoseCliError as exc:
        if _state["debug"] or "--debug" in (argv if argv is not None else sys.argv):
            traceback.print_exc()
        err_console.print(Text("error: ", style="bold red") + Text(str(exc)), highlight=False, soft_wrap=True)
        sys.exit(EXIT_USER_ERROR)
