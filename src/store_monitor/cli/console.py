"""What the commands say on stderr: errors (with the usage-error exit), warnings, progress."""

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, TypeVar

import typer

# Bad input exits with the usage-error code, like a bad option.
BAD_INPUT = 2
T = TypeVar("T")


def fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(BAD_INPUT)


def warn(message: str) -> None:
    typer.secho(f"warning: {message}", err=True, fg="yellow")


def say(message: str) -> None:
    typer.echo(message, err=True)


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


@contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner on a terminal; nothing when stderr is a pipe or file."""
    if stderr_is_terminal():
        from rich.console import Console

        with Console(stderr=True).status(message):
            yield
    else:
        yield


def step(message: str, work: Callable[[], T]) -> T:
    with status(message):
        return work()
