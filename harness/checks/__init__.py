"""Checks: oracles over the journal.

A check reads the journal (attempts, calls, marks) after a drill and returns a
:class:`CheckResult`: a :class:`Verdict`, a one-line summary, and the :class:`Evidence` behind it
(the attempts and calls involved, the lane, the time, the measured value and the bound)::

    from harness.checks import evaluate_all, make_check
    report = evaluate_all(journal, [make_check("retries_bounded", {"max_attempts_per_call": 3})])
    assert report.passed, report.render()

Verdicts, in the spirit of Jepsen's checkers:

- ``PASS``: the journal shows the property held, and there was something to judge.
- ``FAIL``: the journal shows a violation; the evidence names the attempts that broke it, and
  :func:`render_failure` prints their timeline.
- ``UNKNOWN``: the journal cannot tell. An attempt cut or timed out has an unknown outcome (like
  Jepsen's ``:info`` operations), and a check whose situation never happened in the drill (no
  ``Retry-After`` was ever sent, the primary never failed, no fault window closed) did not test
  anything. Unknown is an honest answer, never rounded to a pass or a fail.

Results combine with :func:`combine`: any ``FAIL`` fails, else any ``UNKNOWN`` is unknown, else
the whole passes. Within one check, the same rule combines its evidence items.

A **call** is the group of attempts with the same call id (``x-routechaos-call-id``), else the
same conversation fingerprint (:func:`harness.attribution.attempts_by_call`), joined with the workload's call record
where there is one; call records are preferred for outcomes, since only the agent knows what it
accepted.

Checks are registered by the name profiles use; each is a frozen dataclass whose fields are its
typed parameters, built with :func:`make_check` (``ValueError`` for an unknown check or a bad
parameter). Adding a check is one class with ``@register("name")`` and its tests.
"""

from __future__ import annotations

from . import compat, cost, latency, loops, outcomes, retries, routing  # noqa: F401  (register the checks)
from ._calls import CallView, attribution_of, call_views, percentile, permanent_reason
from .base import (
    CHECKS,
    Check,
    CheckResult,
    Evidence,
    Report,
    Verdict,
    combine,
    make_check,
    make_checks,
    register,
    render_failure,
    render_timeline,
)
from .judge import evaluate_all
from .latency import LatencyBudget, call_metrics
from .outcomes import AliveAfter, NoLostCalls, NoTruncatedSuccess, ReportsFallbackModel
from .retries import Backoff, HonorsRetryAfter, NoHammering, NoRetryOnPermanent, RetriesBounded, sdk_runs
from .routing import CircuitOpens, FallbackWithin, RecoversWithin

__all__ = [
    "CHECKS",
    "AliveAfter",
    "Backoff",
    "CallView",
    "Check",
    "CheckResult",
    "CircuitOpens",
    "Evidence",
    "FallbackWithin",
    "HonorsRetryAfter",
    "LatencyBudget",
    "NoHammering",
    "NoLostCalls",
    "NoRetryOnPermanent",
    "NoTruncatedSuccess",
    "RecoversWithin",
    "Report",
    "ReportsFallbackModel",
    "RetriesBounded",
    "Verdict",
    "attribution_of",
    "call_metrics",
    "call_views",
    "combine",
    "evaluate_all",
    "make_check",
    "make_checks",
    "percentile",
    "permanent_reason",
    "register",
    "render_failure",
    "render_timeline",
    "sdk_runs",
]
