"""The lane's HTTP/1.1 client against raw asyncio servers on loopback sockets.

Raw servers (not aiohttp) so each test controls exactly which bytes go out and when: chunk
boundaries, cuts mid-body, silence, and when the connection closes.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import Awaitable, Callable

import pytest

from harness.proxy.httpclient import HTTPClient, HTTPClientError, HTTPTimeoutError, Origin

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A loopback server running ``handler`` per connection; counts connections and disconnects."""

    def __init__(self, handler: Handler, ssl_ctx: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_ctx = ssl_ctx
        self.connections = 0
        self.disconnected = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_ctx)
        port = self._server.sockets[0].getsockname()[1]
        self.origin = Origin.parse(f"https://localhost:{port}" if self.ssl_ctx else f"http://127.0.0.1:{port}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """One request: its request line, headers (lower-cased names) and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return lines[0], headers, body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def test_content_length_body_and_request_framing():
    seen: list[tuple[str, dict[str, str], bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(
            b"HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-Mixed-Case: v\r\nContent-Length: 5\r\n\r\n"
        )
        await writer.drain()
        writer.write(b"hello")
        await writer.drain()

    async with Server(handler) as srv:
        client = HTTPClient()
        resp = await client.request(srv.origin, "POST", "/v1/x?a=1", [("X-Api-Key", "k")], b'{"q":1}')
        assert (resp.status, resp.reason) == (201, "Created")
        assert ("X-Mixed-Case", "v") in resp.headers
        assert await resp.read() == b"hello"
        await client.close()
    line, headers, body = seen[0]
    assert line == "POST /v1/x?a=1 HTTP/1.1"
    assert headers["host"] == srv.origin.host_header
    assert headers["content-length"] == "7" and headers["connection"] == "keep-alive"
    assert headers["x-api-key"] == "k" and body == b'{"q":1}'


async def test_chunked_body_is_delivered_piece_by_piece():
    second = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b"data: 1\n\n"))
        await writer.drain()
        await asyncio.wait_for(second.wait(), 5)  # the client must have the first piece by now
        writer.write(chunk(b"data: 2\n\n")[:4])  # a chunk split across writes, then trailers
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(chunk(b"data: 2\n\n")[4:] + b"0\r\nX-Trailer: t\r\n\r\n")
        await writer.drain()

    async with Server(handler) as srv:
        client = HTTPClient()
        resp = await client.request(srv.origin, "GET", "/s", [])
        assert await resp.read_chunk() == b"data: 1\n\n"
        second.set()
        rest = b""
        while piece := await resp.read_chunk():
            rest += piece
        assert rest == b"data: 2\n\n"
        await client.close()


async def test_close_delimited_body_and_head_without_body():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line, _, _ = await read_request(reader)
        if line.startswith("HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            await writer.drain()
            line, _, _ = await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nuntil ")
        await writer.drain()
        writer.write(b"the end")
        await writer.drain()
        writer.close()

    async with Server(handler) as srv:
        client = HTTPClient()
        head = await client.request(srv.origin, "HEAD", "/", [])
        assert head.status == 200 and await head.read() == b""
        resp = await client.request(srv.origin, "GET", "/", [])
        assert await resp.read() == b"until the end"
        assert srv.connections == 1  # HEAD left the connection reusable
        await client.close()


async def test_keep_alive_reuses_one_connection():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for i in range(10):
            await read_request(reader)
            body = b"r%d" % i
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()

    async with Server(handler) as srv:
        client = HTTPClient()
        bodies = [await (await client.request(srv.origin, "GET", "/", [])).read() for _ in range(3)]
        assert bodies == [b"r0", b"r1", b"r2"]
        assert srv.connections == 1
        await client.close()


async def test_connection_close_response_is_not_reused():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.5)  # closes late: the client must not reuse it meanwhile

    async with Server(handler) as srv:
        client = HTTPClient()
        for _ in range(2):
            assert await (await client.request(srv.origin, "GET", "/", [])).read() == b"ok"
        assert srv.connections == 2
        await client.close()


async def test_response_cut_mid_chunk_raises():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b"whole") + b"20\r\npart")
        await writer.drain()

    async with Server(handler) as srv:
        client = HTTPClient()
        resp = await client.request(srv.origin, "GET", "/", [])
        got = b""
        with pytest.raises(HTTPClientError, match="before the end of the body"):
            while piece := await resp.read_chunk():
                got += piece
        assert got == b"wholepart"  # what did arrive was delivered
        await client.close()


@pytest.mark.parametrize(
    "head",
    [b"HTTP/1.1 2x0 OK\r\n\r\n", b"SPDY/3 200 OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n"],
)
async def test_malformed_response_head_raises(head: bytes):
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(head)
        await writer.drain()
        await asyncio.sleep(1)

    async with Server(handler) as srv:
        client = HTTPClient()
        with pytest.raises(HTTPClientError, match="malformed"):
            await client.request(srv.origin, "GET", "/", [])
        await client.close()


async def test_connection_refused_raises():
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    client = HTTPClient()
    with pytest.raises(HTTPClientError, match="cannot connect"):
        await client.request(Origin.parse(f"http://127.0.0.1:{port}"), "GET", "/", [])


async def test_read_timeout_raises_mid_body():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
        await writer.drain()
        for _ in range(3):  # data within the timeout keeps the read alive...
            await asyncio.sleep(0.1)
            writer.write(b"6")
            await writer.drain()
        await asyncio.sleep(5)  # ...silence does not

    async with Server(handler) as srv:
        client = HTTPClient(read_timeout=0.25)
        resp = await client.request(srv.origin, "GET", "/", [])
        got = b""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(HTTPTimeoutError):
            while piece := await resp.read_chunk():
                got += piece
        assert got == b"12345666"
        assert 0.5 < loop.time() - t0 < 2.0
        await client.close()


async def test_cancelling_a_read_mid_body_closes_the_connection():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b"first"))
        await writer.drain()
        assert await reader.read(1) == b""  # waits for the client to hang up
        srv.disconnected.set()

    async with Server(handler) as srv:
        client = HTTPClient()
        resp = await client.request(srv.origin, "GET", "/", [])
        assert await resp.read_chunk() == b"first"
        task = asyncio.create_task(resp.read_chunk())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(srv.disconnected.wait(), 5)
        assert await resp.read_chunk() == b""  # closed: nothing more, and nothing went back to the pool
        await client.close()


def _tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts for ``localhost`` from a throwaway CA."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        pytest.skip("the cryptography package is not installed: no certificate for a local TLS server")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        with open(cert_path, "wb") as f:
            f.write(cert_pem)
        with open(key_path, "wb") as f:
            f.write(key_pem)
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client


async def test_https_with_a_self_signed_certificate():
    server_ctx, client_ctx = _tls_contexts()
    sni: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: sni.append(name)  # type: ignore[assignment]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b"secure") + b"0\r\n\r\n")
            await writer.drain()

    async with Server(handler, server_ctx) as srv:
        client = HTTPClient(ssl_context=client_ctx)
        for _ in range(2):
            assert await (await client.request(srv.origin, "GET", "/", [])).read() == b"secure"
        assert srv.connections == 1 and sni == ["localhost"]
        await client.close()
        # the default context does not trust the self-signed certificate
        with pytest.raises(HTTPClientError, match="CERTIFICATE_VERIFY_FAILED"):
            await HTTPClient().request(srv.origin, "GET", "/", [])


def test_origin_parsing():
    o = Origin.parse("https://api.example.com/prefix/")
    assert (o.scheme, o.host, o.port, o.prefix, o.host_header) == (
        "https",
        "api.example.com",
        443,
        "/prefix",
        "api.example.com",
    )
    o = Origin.parse("http://[::1]:8080")
    assert (o.host, o.port, o.host_header) == ("::1", 8080, "[::1]:8080")
    with pytest.raises(ValueError):
        Origin.parse("ftp://x")


def test_the_client_connects_on_uvloop():
    """uvloop's create_connection refuses asyncio's happy_eyeballs_delay: a lane run on uvloop
    (the `fast` extra) must still reach its upstream."""
    uvloop = pytest.importorskip("uvloop")

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    async def main() -> bytes:
        async with Server(handler) as srv:
            client = HTTPClient()
            try:
                return await (await client.request(srv.origin, "GET", "/", [])).read()
            finally:
                await client.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(main()) == b"ok"
