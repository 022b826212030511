"""Cassettes: recordings of real provider exchanges, with their timing, as versioned JSON Lines.

A cassette is what a lane with a real upstream saw its upstream send (before any fault acted on
it), so it can later stand in for that upstream (:mod:`harness.playback`). The format is
documented in ``docs/cassettes.md``; in short::

    {"type": "cassette", "version": 1, "created": 1767225600.0, "producer": "routechaos 0.x"}
    {"type": "exchange", "n": 1, "lane": "primary", "request": {...}, "response": {...}}

One header line, then one line per exchange, in the order their responses ended. A request is
identified by its **key**: a digest of the fields that say which request it is (dialect, method,
path without its query, model, stream flag, and the conversation fingerprint the journal
computes), so a retry, or the same conversation sent by another run of the agent, finds it. A
stream keeps every event as the dialect framed it (SSE text, NDJSON lines, or a binary Bedrock
event-stream frame as base64) with its offset in seconds from the moment the request was sent.

Credentials never reach a cassette: request headers, the path's query, request and response
bodies and every event pass through :mod:`harness.redact`, the journal's redaction (a Bedrock
frame whose payload held a key-shaped value is re-framed around the redacted payload, CRCs
recomputed).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .jsonl import FieldError, brief, dumps, record_from_json
from .redact import is_secret_header, redact_headers, redact_text, redact_url
from .version import __version__

__all__ = [
    "VERSION",
    "Cassette",
    "CassetteError",
    "CassetteExistsError",
    "CassetteWriter",
    "Exchange",
    "RecordedEvent",
    "RecordedRequest",
    "RecordedResponse",
    "redact_bytes",
    "request_key",
]

VERSION = 1
#: how a recorded exchange ended, as the recorder saw the upstream's response end
ENDS = ("complete", "cut", "upstream_error", "closed")


class CassetteError(ValueError):
    """A cassette file holds a line that is not a cassette record: the message names file and line."""


class CassetteExistsError(FileExistsError):
    """A recording never overwrites a cassette."""

    def __init__(self, path: Path) -> None:
        super().__init__(17, "already exists", str(path))
        self.path = path

    def __str__(self) -> str:
        return (
            f"cassette {self.path} already exists: a recording never overwrites one (choose a new path, or remove it)"
        )


def request_key(dialect: str, method: str, path: str, model: str | None, stream: bool, fingerprint: str) -> str:
    """The digest that identifies a request: equal for a retry, another run, another process."""
    path = path.split("?", 1)[0]
    blob = json.dumps([dialect, method.upper(), path, model, bool(stream), fingerprint], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# -- redaction of bytes ---------------------------------------------------------------------------
def _redact_frame(raw: bytes) -> bytes:
    """A Bedrock event-stream frame with its payload redacted (re-framed only when it changed)."""
    if len(raw) < 16:
        return raw
    total, head_len = struct.unpack_from("!II", raw)
    if total != len(raw) or 12 + head_len > total - 4:
        return redact_bytes(raw, framed=False)
    payload = raw[12 + head_len : total - 4]
    clean = redact_bytes(payload, framed=False)
    if clean == payload:
        return raw
    headers = raw[12 : 12 + head_len]
    new_total = 12 + head_len + len(clean) + 4
    prelude = struct.pack("!II", new_total, head_len)
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + headers + clean
    return body + struct.pack("!I", zlib.crc32(body))


def redact_bytes(data: bytes, *, framed: bool = False) -> bytes:
    """``data`` with every credential in it replaced (UTF-8 text, else byte for byte as Latin-1,
    so binary data keeps its other bytes); ``framed``: ``data`` is one event-stream frame."""
    if framed:
        return _redact_frame(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        clean = redact_text(data.decode("latin-1"))
        return data if clean == data.decode("latin-1") else clean.encode("latin-1", "replace")
    clean = redact_text(text)
    return data if clean == text else clean.encode("utf-8")


def _text_or_b64(data: bytes, *, binary: bool = False) -> dict[str, str]:
    if not binary:
        try:
            return {"data": data.decode("utf-8")}
        except UnicodeDecodeError:
            pass
    return {"b64": base64.b64encode(data).decode("ascii")}


def _bytes_of(obj: Mapping[str, Any]) -> bytes:
    if obj.get("b64") is not None:
        return base64.b64decode(obj["b64"])
    return str(obj.get("data") or "").encode("utf-8")


# -- records ----------------------------------------------------------------------------------
@dataclass(slots=True)
class RecordedEvent:
    """One stream event: ``t`` seconds after the request was sent, its bytes as text or base64."""

    t: float
    data: str | None = None
    b64: str | None = None

    @property
    def raw(self) -> bytes:
        return _bytes_of({"data": self.data, "b64": self.b64})


@dataclass(slots=True)
class RecordedRequest:
    key: str
    dialect: str
    method: str
    path: str
    fingerprint: str
    model: str | None = None
    stream: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    body_b64: str | None = None

    def describe(self) -> str:
        return (
            f"{self.method} {self.path.split('?', 1)[0]} model {self.model or '-'} "
            f"stream {str(self.stream).lower()} conversation {self.fingerprint}"
        )


@dataclass(slots=True)
class RecordedResponse:
    status: int
    t_headers: float = 0.0
    headers: list[list[str]] = field(default_factory=list)
    body: str | None = None
    body_b64: str | None = None
    events: list[dict[str, Any]] | None = None
    end: str = "complete"
    error: str | None = None
    t_end: float | None = None

    @property
    def body_bytes(self) -> bytes:
        return _bytes_of({"data": self.body, "b64": self.body_b64})

    def recorded_events(self) -> list[RecordedEvent]:
        return [record_from_json(RecordedEvent, e) for e in self.events or ()]


@dataclass(slots=True)
class Exchange:
    """One request to the upstream and everything it answered."""

    n: int
    lane: str
    request: RecordedRequest
    response: RecordedResponse
    wall: float = 0.0

    def to_json(self) -> dict[str, Any]:
        req = {k: getattr(self.request, k) for k in self.request.__dataclass_fields__}
        resp = {k: getattr(self.response, k) for k in self.response.__dataclass_fields__}
        return {"type": "exchange", "n": self.n, "lane": self.lane, "wall": self.wall, "request": req, "response": resp}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Exchange:
        for part in ("request", "response"):
            if not isinstance(obj.get(part), dict):
                raise FieldError(part, f"{brief(obj.get(part))} is not an object")
        try:
            req = record_from_json(RecordedRequest, obj["request"])
        except FieldError as exc:
            raise FieldError(f"request.{exc.field}", exc.message) from None
        try:
            resp = record_from_json(RecordedResponse, obj["response"])
            for i, e in enumerate(resp.events or ()):
                if not isinstance(e, dict):
                    raise FieldError(f"events[{i}]", f"{brief(e)} is not an object")
                try:
                    record_from_json(RecordedEvent, e)
                except FieldError as exc:
                    raise FieldError(f"events[{i}].{exc.field}", exc.message) from None
        except FieldError as exc:
            raise FieldError(f"response.{exc.field}", exc.message) from None
        if resp.end not in ENDS:
            raise FieldError("response.end", f"{brief(resp.end)} is not one of {', '.join(ENDS)}")
        shell = record_from_json(_Shell, obj)
        return cls(shell.n, shell.lane, req, resp, shell.wall)


@dataclass(slots=True)
class _Shell:
    n: int
    lane: str
    wall: float = 0.0


def make_request(
    *,
    dialect: str,
    method: str,
    path_qs: str,
    headers: Mapping[str, str],
    body: bytes,
    model: str | None,
    stream: bool,
    fingerprint: str,
) -> RecordedRequest:
    """A request as a cassette keeps it: identified by its key, every credential redacted."""
    clean = redact_bytes(body)
    try:
        text: str | None = clean.decode("utf-8")
        b64 = None
    except UnicodeDecodeError:
        text, b64 = None, base64.b64encode(clean).decode("ascii")
    return RecordedRequest(
        key=request_key(dialect, method, path_qs, model, stream, fingerprint),
        dialect=dialect,
        method=method,
        path=redact_url(path_qs),
        fingerprint=fingerprint,
        model=redact_text(model) if model else model,
        stream=stream,
        headers=redact_headers(headers),
        body=text,
        body_b64=b64,
    )


def redact_response_headers(headers: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Response headers with credentials (``Set-Cookie``, tokens) redacted, order and case kept."""
    out = []
    for k, v in headers:
        out.append([k, "[redacted]" if is_secret_header(k) else redact_text(v)])
    return out


def event_record(t: float, raw: bytes, *, binary: bool) -> dict[str, Any]:
    """One event as a cassette line holds it (redacted; base64 for a binary frame)."""
    return {"t": round(t, 6), **_text_or_b64(redact_bytes(raw, framed=binary), binary=binary)}


def body_fields(body: bytes) -> dict[str, str | None]:
    clean = redact_bytes(body)
    try:
        return {"body": clean.decode("utf-8"), "body_b64": None}
    except UnicodeDecodeError:
        return {"body": None, "body_b64": base64.b64encode(clean).decode("ascii")}


# -- files ------------------------------------------------------------------------------------
class CassetteWriter:
    """Appends exchanges to a new cassette file, one flushed line each (thread-safe)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._file: TextIO | None = self.path.open("x", encoding="utf-8")
        except FileExistsError:
            raise CassetteExistsError(self.path) from None
        self._lock = threading.Lock()
        self._n = 0
        self._write(
            {"type": "cassette", "version": VERSION, "created": time.time(), "producer": f"routechaos {__version__}"}
        )

    def _write(self, obj: dict[str, Any]) -> None:
        assert self._file is not None
        self._file.write(dumps(obj, ensure_ascii=False) + "\n")
        self._file.flush()

    def add(self, lane: str, request: RecordedRequest, response: RecordedResponse) -> Exchange:
        with self._lock:
            self._n += 1
            ex = Exchange(self._n, lane, request, response, time.time())
            if self._file is not None:
                self._write(ex.to_json())
            return ex

    @property
    def count(self) -> int:
        return self._n

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class Cassette:
    """A cassette read back: its exchanges, and an index by request key."""

    def __init__(self, exchanges: list[Exchange], path: Path | None = None) -> None:
        self.exchanges = exchanges
        self.path = path
        self.by_key: dict[str, list[Exchange]] = {}
        for ex in exchanges:
            self.by_key.setdefault(ex.request.key, []).append(ex)

    @classmethod
    def load(cls, path: str | Path) -> Cassette:
        """Strict: every line must be a record; errors name the file and line."""
        path = Path(path)
        out: list[Exchange] = []
        header = False
        with path.open("rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw.decode("utf-8"))
                except (ValueError, RecursionError) as exc:
                    if not raw.endswith(b"\n"):
                        break  # a recording stopped while writing its last line
                    raise CassetteError(f"{path}:{lineno}: not a JSON line: {exc}") from None
                if not isinstance(obj, dict):
                    raise CassetteError(f"{path}:{lineno}: not a cassette record")
                kind = obj.get("type")
                if kind == "cassette":
                    version = obj.get("version")
                    if version != VERSION:
                        raise CassetteError(
                            f"{path}:{lineno}: cassette version {brief(version)}; this routechaos reads {VERSION}"
                        )
                    header = True
                elif kind == "exchange":
                    if not header:
                        raise CassetteError(f"{path}:{lineno}: an exchange before the cassette header line")
                    try:
                        out.append(Exchange.from_json(obj))
                    except FieldError as exc:
                        raise CassetteError(f"{path}:{lineno}: exchange: {exc}") from None
                else:
                    raise CassetteError(f"{path}:{lineno}: type: {brief(kind)} is not cassette or exchange")
        if not header:
            raise CassetteError(f"{path}: not a cassette (no header line)")
        return cls(out, path)

    def nearest(self, req: RecordedRequest) -> Exchange | None:
        """The recorded exchange most like ``req``: most identifying fields equal, then the body
        most alike; ``None`` in an empty cassette."""
        import difflib

        best: tuple[float, int, Exchange] | None = None
        for ex in self.exchanges:
            r = ex.request
            score = sum(
                (
                    4 * (r.dialect == req.dialect),
                    4 * (r.path.split("?", 1)[0] == req.path.split("?", 1)[0]),
                    2 * (r.model == req.model),
                    1 * (r.stream == req.stream),
                )
            )
            if r.body and req.body:
                score += difflib.SequenceMatcher(None, r.body[:2000], req.body[:2000]).quick_ratio()
            cand = (score, -ex.n, ex)
            if best is None or cand[:2] > best[:2]:
                best = cand
        return best[2] if best else None


def differences(a: RecordedRequest, b: RecordedRequest) -> list[str]:
    """Which identifying fields of two requests differ (for the unmatched-request error)."""
    out = []
    if a.dialect != b.dialect:
        out.append("dialect")
    if a.method != b.method or a.path.split("?", 1)[0] != b.path.split("?", 1)[0]:
        out.append("path")
    if a.model != b.model:
        out.append("model")
    if a.stream != b.stream:
        out.append("stream")
    if a.fingerprint != b.fingerprint:
        out.append("conversation")
    return out
