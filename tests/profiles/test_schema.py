"""The generated JSON Schema: committed, current, and in agreement with the loader.

The schema is what editors and other tools see; the loader is what drills use. Both come from the
same registries, and these tests keep it that way: the committed file must equal a fresh
generation, every shipped profile must validate, and profiles the loader rejects for their shape
must fail the schema too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness import schedule
from harness.checks import CHECKS
from harness.faults.base import fault_names
from harness.schema import SCHEDULE_KEYS, SCHEMA_PATH, dump, profile_json_schema
from harness.yamlpos import read_located

CATALOGUE = Path(__file__).resolve().parents[2] / "fault_profiles"
PROFILES = sorted(CATALOGUE.glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = profile_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_current() -> None:
    assert SCHEMA_PATH.is_file(), "run: python -m harness.schema --write"
    assert SCHEMA_PATH.read_text(encoding="utf-8") == dump(), "stale schema; run: python -m harness.schema --write"


def test_module_entry_point_prints_and_checks() -> None:
    out = subprocess.run([sys.executable, "-m", "harness.schema"], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["title"] == "routechaos profile"
    assert subprocess.run([sys.executable, "-m", "harness.schema", "--check"], capture_output=True).returncode == 0


def test_schema_lists_every_registered_name() -> None:
    schema = profile_json_schema()
    defs = schema["$defs"]
    assert defs["fault"]["properties"]["fault"]["enum"] == fault_names()
    assert all(f"fault.{n}" in defs for n in fault_names())
    check_names = {next(iter(f["properties"])) for f in defs["check"]["anyOf"] if f.get("type") == "object"}
    assert check_names == set(CHECKS)
    obj = next(a for a in defs["schedule"]["anyOf"] if a.get("type") == "object")
    assert set(obj["properties"]) == set(SCHEDULE_KEYS) == schedule._KEYS


def test_fault_attributes_carry_types_choices_and_docs() -> None:
    defs = profile_json_schema()["$defs"]
    rl = defs["fault.rate_limit"]["properties"]
    assert rl["retry_after"]["anyOf"] == [{"type": "number"}, {"type": "null"}]
    assert "scaled by time_scale" in rl["retry_after"]["description"]
    assert rl["limit"]["enum"] == ["requests", "tokens"]
    assert rl["retry_after_ms"]["type"] == "boolean"
    assert defs["fault.http_error"]["properties"]["body"]["enum"] == ["json", "html", "empty"]


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_shipped_profile_validates(path: Path, validator: jsonschema.Draft202012Validator) -> None:
    """The file as an editor sees it (before ``extends`` merging)."""
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(read_located(path).data)]
    assert not errors, "\n".join(errors)


GOOD = {"lanes": {"a": {"dialect": "openai"}}}

BAD = {
    "unknown-top-key": {**GOOD, "colour": "red"},
    "no-dialect": {"lanes": {"a": {"port": 1}}},
    "unknown-dialect": {"lanes": {"a": {"dialect": "cohere"}}},
    "upstream-and-simulator": {"lanes": {"a": {"dialect": "openai", "upstream": "http://x", "simulator": {}}}},
    "upstream-not-http": {"lanes": {"a": {"dialect": "openai", "upstream": "ftp://x"}}},
    "negative-tps": {"lanes": {"a": {"dialect": "openai", "simulator": {"tokens_per_second": -1}}}},
    "unknown-fault": {**GOOD, "faults": [{"fault": "gremlins"}]},
    "unknown-attr": {**GOOD, "faults": [{"fault": "rate_limit", "retry_afterr": 1}]},
    "bad-choice": {**GOOD, "faults": [{"fault": "http_error", "body": "xml"}]},
    "wrong-type": {**GOOD, "faults": [{"fault": "queue", "delay": "later"}]},
    "bad-schedule-key": {**GOOD, "faults": [{"fault": "overloaded", "schedule": {"frist": 1}}]},
    "for-without-every": {**GOOD, "faults": [{"fault": "overloaded", "schedule": {"for": 1}}]},
    "probability>1": {**GOOD, "faults": [{"fault": "overloaded", "schedule": {"probability": 2}}]},
    "unknown-check": {**GOOD, "checks": ["no_such_check"]},
    "check-missing-param": {**GOOD, "checks": [{"fallback_within": {"primary": "a"}}]},
    "check-bad-param": {**GOOD, "checks": [{"no_hammering": {"max_attemps": 1}}]},
    "toxic-bad-stream": {**GOOD, "toxics": [{"lane": "a", "type": "latency", "stream": "sideways"}]},
    "toxic-bad-attr": {**GOOD, "toxics": [{"lane": "a", "type": "latency", "attributes": {"rate": 1}}]},
    "time-scale-0": {**GOOD, "time_scale": 0},
    "seed-string": {**GOOD, "seed": "abc"},
}


@pytest.mark.parametrize("data", BAD.values(), ids=list(BAD))
def test_bad_profiles_fail_the_schema(data: dict, validator: jsonschema.Draft202012Validator) -> None:
    assert list(validator.iter_errors(data)), "the schema accepted a profile the loader rejects"


def test_good_minimal_profiles_pass(validator: jsonschema.Draft202012Validator) -> None:
    text = """
lanes:
  a: {dialect: anthropic, simulator: {slots: null, capacity_error: overloaded}}
  b: {dialect: gemini, upstream: "https://generativelanguage.googleapis.com"}
faults:
  - {fault: rate_limiter, lane: a, headers: broken, requests_per_minute: 10}
  - {fault: rate_limit, lane: a, retry_after_raw: 300, schedule: {window: [0, inf]}}
toxics:
  - {lane: b, type: latency, attributes: {latency: 100, jitter: 10}, schedule: {window: [1, 2]}}
checks: [no_lost_calls, {alive_after: null}, {recovers_within: {lane: a, within: 3}}]
"""
    data = yaml.safe_load(text)
    assert not list(validator.iter_errors(data))
    assert not list(validator.iter_errors({"extends": "base-two-lanes.yaml", "lanes": {"primary": {"port": 0}}}))
