"""The pieces of the pass-through path, without sockets: framing and lazy classification.

A template read must give what the dialect's own classification gives, for every text a JSON
string can hold; an event of another shape (or a broken one) must never be read lazily.
"""

from __future__ import annotations

import json
import random

import pytest

from harness.dialects import dialects_for
from harness.dialects.lazy import LazyEvents, match
from harness.sse import SSEDecoder

CHAT = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1796191358,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"%s"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
)
ANTHROPIC = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"%s"}}\n\n'
)
#: JSON string bodies: plain, escapes, broken UTF-8, and bodies that are no valid JSON string
BODIES = [
    b"hello",
    b' na\\u00efve \\"q\\" \\\\ \\n\\t',
    b"\\ud83d\\ude00 and \\ud800 alone",
    b"caf\xc3\xa9 \xff\xfe broken",
    b"a\\x",  # invalid escape
    b"a\\",  # escapes the closing quote
    b'a"b',  # a quote ends the string early
    b"a\tb",  # a raw control character
    b"",  # empty: not content
]


def _reference(dialect, raw: bytes):
    [ev] = SSEDecoder().feed(raw) or [None]
    return None if ev is None else dialect.classify(ev)


@pytest.mark.parametrize(("name", "shape"), [("openai-chat", CHAT), ("anthropic", ANTHROPIC)])
def test_a_template_reads_what_the_dialect_reads(name: str, shape: bytes) -> None:
    dialect = dialects_for(name)[0]
    lazy = LazyEvents(dialect, SSEDecoder())
    first = shape % b"throughput"
    lazy.classify(SSEDecoder().feed(first)[0])
    assert len(lazy.templates) == 1
    for body in BODIES:
        raw = shape % body
        hit = lazy.match(raw)
        ref = _reference(dialect, raw)
        if hit is None:
            continue  # the full path classifies it
        _, text = hit
        assert ref is not None and ref.kind.value == "content" and ref.text == text, (body, ref, text)
    # what must never be read lazily: valid JSON of another meaning, and broken events
    assert lazy.match(shape % b'a\\"b') is not None
    for body in (b"a\\x", b"a\\", b'a"b', b"a\tb", b""):
        assert lazy.match(shape % body) is None, body


def test_shapes_that_differ_outside_the_text_are_not_read_lazily() -> None:
    dialect = dialects_for("openai-chat")[0]
    lazy = LazyEvents(dialect, SSEDecoder())
    lazy.classify(SSEDecoder().feed(CHAT % b"x")[0])
    (t,) = lazy.templates
    assert match(t, (CHAT % b"y").replace(b"1796191358", b"42")) == "y"  # a counter: a free hole
    for other in (
        (CHAT % b"y").replace(b'"finish_reason":null', b'"finish_reason":"stop"'),
        (CHAT % b"y").replace(b'"object":"chat.completion.chunk"', b'"object":"error"'),
        (CHAT % b"y").replace(b'"created":1796191358', b'"created":1.5'),
        (CHAT % b"y").replace(b'"usage":null', b'"usage":{"completion_tokens":3}'),
        (CHAT % b"y").replace(b"\n\n", b"\r\n\r\n"),
    ):
        assert match(t, other) is None, other


def test_random_texts_agree_with_full_classification() -> None:
    rnd = random.Random(11)
    dialect = dialects_for("anthropic")[0]
    lazy = LazyEvents(dialect, SSEDecoder())
    lazy.classify(SSEDecoder().feed(ANTHROPIC % b"seed")[0])
    alphabet = ["a", " ", "é", "\n", '"', "\\", "\u2028", "\x01", "😀", "/", "\ud800"]
    for _ in range(500):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 12)))
        body = json.dumps(text, ensure_ascii=rnd.random() < 0.5)[1:-1].encode("utf-8", "surrogatepass")
        raw = ANTHROPIC % body
        ref = _reference(dialect, raw)
        hit = lazy.match(raw)
        if hit is not None:
            assert ref is not None and ref.text == hit[1] and ref.kind.value == "content"


def test_framing_a_read_directly_equals_framing_through_the_buffer() -> None:
    rnd = random.Random(5)
    pieces = [b"data: x\n\n", b"event: a\ndata: {}\n\n", b"\n", b": ping\n\n", b"id: 1\n\n", b"data: z\n", b"da"]
    for _ in range(2000):
        data = b"".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 6)))
        cuts = sorted(rnd.sample(range(len(data) + 1), min(len(data) + 1, rnd.randint(0, 5))))
        reads = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        dec = SSEDecoder()
        got = [f for r in reads for f in dec.frames(r)]
        expect, rest = [], data
        while (i := rest.find(b"\n\n")) >= 0:
            expect.append(rest[: i + 2])
            rest = rest[i + 2 :]
        assert got == expect and dec.pending == rest, reads
