"""`serve`: the HTTP API under uvicorn, with forwarded headers trusted only from the configured
proxies, and a start-up failure said in one line rather than a traceback."""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from store_monitor.cli.console import fail

if TYPE_CHECKING:
    import uvicorn

    from store_monitor.settings import Settings

# uvicorn's h11 parser buffers at most this much of a request's head (the app checks the rest).
_MAX_HEAD_BYTES = 64 * 1024

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the HTTP API (and, without STORE_MONITOR_REDIS_URL, its in-process job runner)."""
    import uvicorn

    from store_monitor.cli.configuration import service_settings
    from store_monitor.logs import configure_logging
    from store_monitor.web.app import create_app

    settings = service_settings()
    overrides = {"host": host, "port": port}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    problem = settings.auth_problem()
    if problem is not None:
        fail(problem)
    if settings.embedded_database:
        from store_monitor.db.embedded import EmbeddedDatabaseError, check_free

        # The app would refuse a busy data directory too, but only once uvicorn has started.
        try:
            check_free(settings.data_dir)
        except EmbeddedDatabaseError as error:
            fail(str(error))
    configure_logging(settings.log_level, json=settings.log_json)
    app = StartupGuard(create_app(settings))
    server = uvicorn.Server(uvicorn_config(app, settings))
    # On SIGTERM or SIGINT uvicorn stops accepting connections, lets the requests in flight
    # finish (for up to timeout_graceful_shutdown seconds), then runs the lifespan's shutdown.
    try:
        server.run()
    except KeyboardInterrupt:
        pass  # uvicorn stopped on SIGINT, then raised it again
    except SystemExit:
        # uvicorn's exit when the app did not start: with the reason, if it is one line.
        if app.failure is not None:
            fail(app.failure)
        raise


def uvicorn_config(app: ASGIApp, settings: "Settings") -> "uvicorn.Config":
    """How uvicorn serves the app. Forwarded headers (`X-Forwarded-For`, `-Proto`) rewrite the
    client's address only on connections from `trusted_proxies`, and with none (the default)
    never: else any client could pick the address the failed-key limiter counts against."""
    import uvicorn

    proxies = settings.trusted_proxy_networks
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's loggers propagate to ours: one format, with request ids
        timeout_graceful_shutdown=30,
        h11_max_incomplete_event_size=_MAX_HEAD_BYTES,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=[str(network) for network in proxies],
    )


class StartupGuard:
    """The app, but a start-up failure whose message is the whole story (the embedded server's
    errors are one line each) is kept in `failure` for the command to print, not handed to
    uvicorn as a traceback to log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.failure: str | None = None

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        from store_monitor.db.embedded import EmbeddedDatabaseError

        # Starlette reports a failed start-up (with the traceback) before it re-raises the
        # error: held back until the error shows whether it is one of ours.
        held: list[Message] = []

        async def send_but_failure(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                held.append(message)
            else:
                await send(message)

        try:
            await self.app(scope, receive, send_but_failure)
        except EmbeddedDatabaseError as error:
            if not held:
                raise
            self.failure = str(error)
            await send({"type": "lifespan.startup.failed", "message": ""})
        except BaseException:
            for message in held:
                await send(message)
            raise
