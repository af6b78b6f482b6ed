"""Real HTTP receivers on 127.0.0.1 for the sending tests: `asyncio.start_server` speaking just
enough HTTP/1.1, each answering the way its test needs (or not answering at all)."""

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    target: str
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes


Answer = Callable[[ReceivedRequest, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Receiver:
    port: int
    requests: list[ReceivedRequest] = field(default_factory=list)
    connections: int = 0
    """Connections accepted."""

    def url(self, path: str = "/hook", *, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"


def respond(
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    keep_alive: bool = False,
) -> Answer:
    """An answer with this status, body and headers, then the connection closes (unless
    `keep_alive`: the next request may come on it)."""

    async def answer(_request: ReceivedRequest, writer: asyncio.StreamWriter) -> None:
        lines = [f"HTTP/1.1 {status} X", f"content-length: {len(body)}"]
        lines += [] if keep_alive else ["connection: close"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()

    return answer


async def hang(_request: ReceivedRequest, _writer: asyncio.StreamWriter) -> None:
    """Never answer (until the test ends)."""
    await asyncio.Event().wait()


async def endless_body(_request: ReceivedRequest, writer: asyncio.StreamWriter) -> None:
    """200 with a body announced as 1 GiB: 64 KiB of it at once, then nothing more, ever."""
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\n" + b"x" * 65536)
    await writer.drain()
    await asyncio.Event().wait()


@contextlib.asynccontextmanager
async def receiver(
    answer: Answer, *, ssl_context: ssl.SSLContext | None = None, port: int = 0
) -> AsyncIterator[Receiver]:
    """A receiver on 127.0.0.1 (on `port`, or a free one) answering every request with
    `answer`, as many as come on a connection until the client closes it."""
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        state.connections += 1
        try:
            while not reader.at_eof():
                request = await _read_request(reader)
                state.requests.append(request)
                await answer(request, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=ssl_context)
    state = Receiver(port=server.sockets[0].getsockname()[1])
    try:
        yield state
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> ReceivedRequest:
    head = await reader.readuntil(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, _version = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in header_lines:
        if line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return ReceivedRequest(method=method, target=target, headers=headers, body=body)


def in_turn(*answers: Answer) -> Answer:
    """Each request gets the next of `answers`; the last one answers every request after."""
    turn = 0

    async def answer(request: ReceivedRequest, writer: asyncio.StreamWriter) -> None:
        nonlocal turn
        current = answers[min(turn, len(answers) - 1)]
        turn += 1
        await current(request, writer)

    return answer
