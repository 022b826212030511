"""The journal file: strict JSON every tool reads, never appended to twice, and read back totally.

A journal is the only evidence. What a drill writes must open in `jq` and a browser; what
`routechaos report` reads must either be judged (a torn last line from a drill killed mid-write is
skipped, with a warning) or refused with the file and line, never with a traceback.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import pytest

from harness.cli import main
from harness.drill import Drill
from harness.journal import Journal, JournalError, JournalExistsError
from harness.jsonl import dumps
from harness.profile import profile_from_dict

PROFILE = {
    "name": "journal-file",
    "lanes": {"a": {"dialect": "openai", "simulator": {"tokens_per_second": 5000, "answer_tokens": 4, "ttft": 0}}},
    "checks": [{"no_lost_calls": {}}],
}


def _strict(line: str) -> object:
    def refuse(name: str) -> object:
        raise ValueError(f"bare {name} is not JSON")

    return json.loads(line, parse_constant=refuse)


def _drill_journal(tmp_path, calls: int = 2):
    """A real drill's journal: lanes up, a few completions through them, stopped."""
    import httpx

    path = tmp_path / "journal.jsonl"
    with Drill(profile_from_dict(PROFILE), journal_path=path) as drill:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(calls):
            assert httpx.post(drill.url("a") + "/v1/chat/completions", json=body, timeout=10).status_code == 200
        drill.journal.wait_for(calls)
    return path


def test_non_finite_numbers_are_written_as_strings_and_read_back_as_numbers(tmp_path):
    path = tmp_path / "j.jsonl"
    j = Journal(path)
    j.mark("fault_window_open", lane="a", fault="stall", until=math.inf, jitter=math.nan)
    a = j.new_attempt("a")
    a.retry_after = math.inf
    j.record(a)
    j.close()
    for line in path.read_text().splitlines():
        _strict(line)  # no bare Infinity / NaN: strict JSON
    back = Journal.load(path)
    assert back.attempts()[0].retry_after == math.inf  # a float field reads the number back
    assert back.marks()[0].detail == {"fault": "stall", "until": "Infinity", "jitter": "NaN"}
    assert dumps({"x": -math.inf, "y": [1.5, math.nan]}) == '{"x": "-Infinity", "y": [1.5, "NaN"]}'


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_jq_reads_a_journal_holding_an_infinite_retry_after(tmp_path):
    path = tmp_path / "j.jsonl"
    j = Journal(path)
    a = j.new_attempt("a")
    a.retry_after = math.inf
    j.record(a)
    j.close()
    out = subprocess.run(
        ["jq", "-c", 'select(.type == "attempt") | .retry_after'],
        input=path.read_text(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '"Infinity"'


def test_a_journal_is_never_appended_to(tmp_path):
    path = tmp_path / "j.jsonl"
    Journal(path).close()
    before = path.read_text()
    with pytest.raises(JournalExistsError, match="already exists"):
        Journal(path)
    assert path.read_text() == before


def test_a_torn_last_line_is_reported_and_skipped(tmp_path, capsys):
    path = _drill_journal(tmp_path)
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    whole = Journal.load(path)
    assert len(whole) == 2
    path.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # killed mid-write
    torn = Journal.load(path)
    assert len(torn.warnings) == 1 and f"{path}:{len(lines)}" in torn.warnings[0] and "torn" in torn.warnings[0]
    assert [a.id for a in torn.attempts()] == [a.id for a in whole.attempts()]
    assert main(["report", str(path), "--out", str(tmp_path / "r.html")]) == 0  # judged, with a warning
    out = capsys.readouterr().out
    assert "warning" in out and "torn" in out


BAD_LINES = {
    "no id": ('{"type": "attempt"}', "attempt: id: missing"),
    "a JSON array": ("[1]", "not a journal record: a JSON array"),
    "a JSON string": ('"attempt"', "not a journal record: a JSON string"),
    "not JSON": ("attempt a000009 ok", "not a JSON line"),
    "a time that is a string": (
        '{"type": "attempt", "id": "a9", "lane": "a", "t_start": "soon", "wall_start": 0}',
        'attempt: t_start: "soon" is not a number',
    ),
    "a status that is true": (
        '{"type": "attempt", "id": "a9", "lane": "a", "t_start": 0, "wall_start": 0, "status": true}',
        "attempt: status: true is not an integer or null",
    ),
    "an unknown outcome": (
        '{"type": "attempt", "id": "a9", "lane": "a", "t_start": 0, "wall_start": 0, "outcome": "fine"}',
        'attempt: outcome: "fine" is not one of ok, error, unknown',
    ),
    "headers that are not strings": (
        '{"type": "attempt", "id": "a9", "lane": "a", "t_start": 0, "wall_start": 0, "headers": {"x": [1]}}',
        "attempt: headers.x: [1] is not a string",
    ),
    "a mark with a list for detail": ('{"type": "mark", "t": 1, "kind": "k", "detail": []}', "mark: detail: [] is not"),
    "a call with no start": ('{"type": "call", "id": "c1"}', "call: t_start: missing"),
    "a type that is a list": ('{"type": ["attempt"]}', 'record: type: ["attempt"] is not a journal record type'),
    "an unknown type": ('{"type": "attempts"}', 'record: type: "attempts" is not a journal record type'),
    "nested 100k deep": ("[" * 100_000 + "]" * 100_000, "not a JSON line: nested too deeply"),
}


@pytest.mark.parametrize("line,message", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_a_bad_line_is_an_error_naming_file_and_line_and_report_exits_2(tmp_path, capsys, line, message):
    path = _drill_journal(tmp_path, calls=1)
    lines = path.read_text().splitlines()
    lines.insert(2, line)  # in the middle: a line that is not a torn tail
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(JournalError) as err:
        Journal.load(path)
    assert str(err.value).startswith(f"{path}:3: ") and message in str(err.value)
    assert main(["report", str(path)]) == 2
    captured = capsys.readouterr()
    assert f"{path}:3: " in captured.err and message in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_bytes_that_are_not_utf8_are_an_error_naming_the_line(tmp_path):
    path = _drill_journal(tmp_path, calls=1)
    path.write_bytes(path.read_bytes() + b'{"type": "mark", "t": 1, "kind": "\xff"}\n')
    with pytest.raises(JournalError, match=r"j?journal.jsonl:\d+: not a JSON line"):
        Journal.load(path)


def test_report_refuses_a_drill_start_whose_checks_or_time_scale_do_not_fit(tmp_path, capsys):
    path = tmp_path / "j.jsonl"
    for detail, message in [
        ({"time_scale": 0, "checks": []}, "time_scale 0 is not a positive number"),
        ({"time_scale": "fast"}, 'time_scale "fast" is not a positive number'),
        ({"checks": [{"no_such_check": {}}]}, "unknown check 'no_such_check'"),
        ({"checks": 7}, "drill_start: checks:"),
    ]:
        path.unlink(missing_ok=True)
        j = Journal(path)
        j.mark("drill_start", **detail)
        j.close()
        assert main(["report", str(path)]) == 2, detail
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
