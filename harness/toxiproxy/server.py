"""The embedded Toxiproxy-compatible server.

Three ways to run it::

    async with ToxiproxyServer() as server:          # in an asyncio program (port 0: ephemeral)
        client = ToxiproxyClient(server.url)

    with ToxiproxyServer.run_in_thread() as handle:  # from sync code (toxiproxy-python, pytest)
        ...handle.url...

    routechaos toxiproxy --host 127.0.0.1 --port 8474   # main(argv) / serve_forever()

It speaks Toxiproxy's HTTP API so that a real Toxiproxy and this one are interchangeable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import signal
import sys
import threading
from collections.abc import Coroutine
from http import HTTPStatus
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from ..ports import BIND_ERRNOS, PortError
from ..webguard import Gate, GuardedAppRunner, describe_error
from .api import VERSION, make_app
from .link import join_host_port
from .proxy import ApiError, ProxyCollection

log = logging.getLogger(__name__)
T = TypeVar("T")


class ToxiproxyServer:
    """Embedded Toxiproxy: the HTTP API plus one TCP listener per enabled proxy."""

    def __init__(self, *, seed: int | None = None, allowed_hosts: tuple[str, ...] = ()) -> None:
        #: Seeded so toxicity rolls and jitter replay for a given seed (Toxiproxy's ``-seed``).
        self.collection = ProxyCollection(random.Random(seed))
        #: ``Host`` names accepted besides the bound address (a Docker service name, say)
        self.gate = Gate(allowed_hosts)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """Base URL of the API, e.g. ``http://127.0.0.1:8474``."""
        if self._url is None:
            raise RuntimeError("server not started")
        return self._url

    async def start(self, host: str = "127.0.0.1", port: int = 8474) -> str:
        """Start the API on ``host:port`` (port 0 picks a free one) and return its URL."""
        if self._runner is not None:
            return self.url
        runner = GuardedAppRunner(
            make_app(self.collection, self.gate), on_error=_protocol_error, access_log=None, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self.gate.bind(host, bound_port)
        self._url = f"http://{join_host_port(bound_host, bound_port)}"
        return self._url

    async def stop(self) -> None:
        """Stop every proxy (dropping its connections) and the API. Returns promptly."""
        await self.collection.clear()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def populate(self, proxies: list[dict[str, Any]]) -> None:
        """Create proxies in-process, as ``POST /populate`` would."""
        _, err = await self.collection.populate(proxies)
        if err is not None:
            raise err

    async def __aenter__(self) -> ToxiproxyServer:
        if self._runner is None:
            await self.start(port=0)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @classmethod
    def run_in_thread(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int | None = None,
        timeout: float = 10.0,
        allowed_hosts: tuple[str, ...] = (),
    ) -> ThreadedToxiproxyServer:
        """Run a server on its own event loop in a daemon thread; for synchronous callers."""
        return ThreadedToxiproxyServer(cls(seed=seed, allowed_hosts=allowed_hosts), host, port, timeout)


def _protocol_error(request: web.BaseRequest, status: int, exc: BaseException | None) -> web.Response:
    """What Go's net/http answers to a request it cannot parse (``400 Bad Request`` as text),
    with one log line instead of aiohttp's traceback and echo of the offending bytes."""
    if status >= 500:
        log.error("toxiproxy API: %s failed", request.method, exc_info=exc)
    else:
        log.warning("toxiproxy API: malformed request from %s refused: %s", request.remote, describe_error(exc))
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return web.Response(status=status, text=f"{status} {phrase}", content_type="text/plain", charset="utf-8")


class ThreadedToxiproxyServer:
    """Handle on a :class:`ToxiproxyServer` running in a background thread."""

    def __init__(self, server: ToxiproxyServer, host: str, port: int, timeout: float) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(host, port), name="toxiproxy", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError("embedded toxiproxy did not start")
        if self._error is not None:
            self._thread.join(timeout)
            raise self._error

    @property
    def url(self) -> str:
        return self.server.url

    def _run(self, host: str, port: int) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.start(host, port))
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._started.set()
            self.loop.close()
            return
        self._started.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine on the server's loop (e.g. ``handle.call(handle.server.populate([...]))``)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and its thread; idempotent."""
        if not self._thread.is_alive():
            return

        async def _stop() -> None:
            await self.server.stop()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        try:
            self.call(_stop(), timeout)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)

    def __enter__(self) -> ThreadedToxiproxyServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


async def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8474,
    *,
    seed: int | None = None,
    config: str | None = None,
    allowed_hosts: tuple[str, ...] = (),
) -> None:
    """Run the API until cancelled; ``config`` is a populate JSON file loaded at start (``-config``)."""
    server = ToxiproxyServer(seed=seed, allowed_hosts=allowed_hosts)
    url = await server.start(host, port)
    try:
        if config:
            with open(config, encoding="utf-8") as fh:
                proxies = json.load(fh)
            try:
                await server.populate(proxies)
            except ApiError as exc:
                log.error("toxiproxy: populating from %s failed: %s", config, exc.message)
        print(f"routechaos toxiproxy {VERSION} API listening on {url}", file=sys.stderr, flush=True)
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``routechaos toxiproxy``: flags follow toxiproxy-server's."""
    parser = argparse.ArgumentParser(prog="routechaos toxiproxy", description="Embedded Toxiproxy server")
    parser.add_argument("--host", default="127.0.0.1", help="API host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8474, help="API port (default 8474)")
    parser.add_argument("--seed", type=int, default=None, help="seed for toxicity rolls and jitter")
    parser.add_argument("--config", default=None, help="JSON file of proxies to populate at start")
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name clients may use besides the bound address (e.g. a Docker service name); repeatable",
    )
    args = parser.parse_args(argv)

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        try:  # SIGTERM stops cleanly, like Ctrl-C (only possible in the main thread)
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        try:
            await serve_forever(
                args.host, args.port, seed=args.seed, config=args.config, allowed_hosts=tuple(args.allow_host)
            )
        except asyncio.CancelledError:
            pass

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        if exc.errno in BIND_ERRNOS:  # exit 3, as every routechaos command whose port is taken
            print(f"routechaos toxiproxy: {PortError('the API', args.host, args.port, exc)}", file=sys.stderr)
            return 3
        print(f"routechaos toxiproxy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
