"""The `store-monitor` command line: offline reports, synthetic data, and the service's parts.

Each command lives in the module of its group; this one only assembles them, in the order
`--help` lists them.
"""

import typer

from store_monitor.cli import keys, service
from store_monitor.cli.inputs import parse_instant
from store_monitor.cli.keys import KeyScopeOption, parse_expiry
from store_monitor.cli.live import live
from store_monitor.cli.loading import ingest
from store_monitor.cli.offline import generate, report
from store_monitor.cli.server import serve

__all__ = ["KeyScopeOption", "app", "parse_expiry", "parse_instant", "report"]

app = typer.Typer(
    help="Uptime and downtime of restaurants within their business hours.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The service's database.", no_args_is_help=True)
db_app.command("upgrade")(service.db_upgrade)
app.add_typer(db_app, name="db")
app.add_typer(keys.app, name="keys")
for command in (report, generate, ingest, live, serve, service.worker, service.openapi):
    app.command()(command)
