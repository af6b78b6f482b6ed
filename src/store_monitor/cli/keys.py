"""`keys create | list | revoke | sign-out`: the service's API keys, from the server's shell."""

import re
import sys
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

import typer

from store_monitor.cli.console import fail, say
from store_monitor.cli.database import run_in_session
from store_monitor.cli.inputs import parse_instant

app = typer.Typer(
    help="API keys: create, list, revoke, end their dashboard sessions.", no_args_is_help=True
)
_DURATION = re.compile(r"(\d+)\s*([mhdw])")
_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class KeyScopeOption(StrEnum):
    """`--scope`: the names of `store_monitor.db.models.KeyScope`, kept in step by a test."""

    admin = "admin"
    ingest = "ingest"
    reports = "reports"
    metrics = "metrics"


def parse_expiry(text: str, *, now: datetime) -> datetime:
    """`--expires`: a duration from now (`90d`, `12h`, `30m`, `2w`) or an instant."""
    duration = _DURATION.fullmatch(text.strip().lower())
    if duration is not None:
        amount, unit = duration.groups()
        return now + timedelta(**{_DURATION_UNITS[unit]: int(amount)})
    try:
        return parse_instant(text)
    except typer.BadParameter:
        raise typer.BadParameter(
            f"{text!r} is neither a duration such as 90d, 12h, 30m or 2w nor an instant "
            "such as 2027-01-01T00:00:00Z"
        ) from None


@app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A unique name for the key, e.g. who holds it.")],
    scope: Annotated[
        KeyScopeOption | None,
        typer.Option(help="What the key may do (see docs/access.md)."),
    ] = None,
    owner: Annotated[
        str | None,
        typer.Option(help="An owner key instead: reports narrowed to this owner's stores."),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(help="Expiry: a duration (90d, 12h) or an instant. Default: never."),
    ] = None,
) -> None:
    """Make an API key; its secret is printed once, as the last line of stdout."""
    from store_monitor import access
    from store_monitor.db.models import KeyScope

    if (scope is None) == (owner is None):
        fail("give either --scope or --owner")
    now = datetime.now(UTC)
    expires_at = parse_expiry(expires, now=now) if expires is not None else None
    server_key = _server_key()
    chosen = KeyScope(scope.value) if scope is not None else None
    try:
        created = run_in_session(
            lambda session: access.create_key(
                session,
                server_key=server_key,
                name=name,
                scope=chosen,
                owner_id=owner,
                expires_at=expires_at,
                now=now,
            )
        )
    except access.InvalidKeyRequest as error:
        fail(str(error))
    what = f"scope {chosen.value}" if chosen is not None else f"owner {created.key.owner_id}"
    until = f", expires {expires_at.isoformat()}" if expires_at is not None else ""
    say(
        f"created key {name!r} ({what}{until}), prefix {created.key.prefix}; "
        "its secret follows and is not shown again:"
    )
    sys.stdout.write(created.secret + "\n")
    sys.stdout.flush()


@app.command("list")
def keys_list() -> None:
    """List the API keys: name, prefix, scope or owner, dates, state (never the secrets)."""
    from store_monitor import access

    now = datetime.now(UTC)
    keys = run_in_session(access.list_keys)
    rows = [("name", "prefix", "scope/owner", "state", "created", "expires", "last used")]
    for key in keys:
        state = (
            "revoked"
            if key.revoked_at is not None
            else "expired"
            if key.expires_at is not None and key.expires_at <= now
            else "active"
        )
        rows.append(
            (
                key.name,
                key.prefix,
                key.scope.value if key.scope is not None else f"owner:{key.owner_id}",
                state,
                _when(key.created_at),
                _when(key.expires_at),
                _when(key.last_used_at),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        line = "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True))
        sys.stdout.write(line.rstrip() + "\n")


@app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke an API key at once; requests with it are refused from now on."""
    from store_monitor import access

    try:
        key = run_in_session(
            lambda session: access.revoke_key(session, name, now=datetime.now(UTC))
        )
    except access.KeyNotFound as error:
        fail(str(error))
    say(f"key {name!r} ({key.prefix}) revoked at {_when(key.revoked_at)}")


@app.command("sign-out")
def keys_sign_out(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """End every dashboard session of a key at once (the key itself stays valid)."""
    from store_monitor import access

    try:
        ended = run_in_session(lambda session: access.end_key_sessions(session, name))
    except access.KeyNotFound as error:
        fail(str(error))
    say(f"key {name!r}: {ended} dashboard session{'' if ended == 1 else 's'} ended")


def _server_key() -> bytes:
    from store_monitor.cli.configuration import service_settings

    secret_key = service_settings().secret_key
    if secret_key is None or not secret_key.get_secret_value().strip():
        fail("STORE_MONITOR_SECRET_KEY is not set: keys are hashed with it, set the server's")
    return secret_key.get_secret_value().encode()


def _when(instant: datetime | None) -> str:
    return instant.isoformat(timespec="seconds") if instant is not None else "-"
