"""The latency budget: time to first token, generation time, total call time and tool time."""

from __future__ import annotations

from dataclasses import dataclass

from ..journal import Journal
from ._calls import CallView, call_views, percentile
from .base import Check, CheckResult, Evidence, Verdict, register

PASS, FAIL, UNKNOWN = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN

METRICS = ("ttft", "generation", "total", "tool")
LEVELS = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "max": 100.0}


def call_metrics(v: CallView) -> dict[str, float]:
    """Seconds, for one successful call: ``ttft`` from the call's start (its first attempt, retries
    and fallback included) to the first content token of the answer it took; ``generation`` from
    that first token to the last; ``total`` the whole call; ``tool`` = total − generation."""
    out: dict[str, float] = {}
    c = v.call
    a = v.serving_attempt()
    start = v.attempts[0].t_start if v.attempts else v.t_start
    if c is not None:
        start = c.t_start
    if c is not None and c.t_first_token is not None:
        out["ttft"] = c.t_first_token - c.t_start
    elif a is not None and a.t_first_token is not None:
        out["ttft"] = a.t_first_token - start
    if a is not None and a.generation_time is not None:
        out["generation"] = a.generation_time
    end = v.t_end
    if end is not None:
        out["total"] = end - start
        if "generation" in out:
            out["tool"] = max(0.0, out["total"] - out["generation"])
    return out


@register("latency_budget")
@dataclass(frozen=True)
class LatencyBudget(Check):
    """Percentiles of successful calls stay within budget: time to first token, generation time,
    total time (and tool time if ``tool_*`` is given). Nearest-rank percentiles; any subset.

    Catches the premium lane that is "up" but useless: queueing (F13), a slow first token (F14),
    throughput collapse (F15), or a router whose retries and fallback take longer than the user
    waits. Generation time (first → last token) is measured apart from tool time (call time minus
    generation), which is reported but only budgeted with ``tool_p*``. ``UNKNOWN`` with fewer than
    ``min_samples`` successful calls for a budgeted metric.
    """

    ttft_p50: float | None = None
    ttft_p90: float | None = None
    ttft_p95: float | None = None
    ttft_p99: float | None = None
    ttft_max: float | None = None
    generation_p50: float | None = None
    generation_p90: float | None = None
    generation_p95: float | None = None
    generation_p99: float | None = None
    generation_max: float | None = None
    total_p50: float | None = None
    total_p90: float | None = None
    total_p95: float | None = None
    total_p99: float | None = None
    total_max: float | None = None
    tool_p50: float | None = None
    tool_p90: float | None = None
    tool_p95: float | None = None
    tool_p99: float | None = None
    tool_max: float | None = None
    min_samples: int = 1

    def validate(self) -> None:
        self._positive(*(f"{m}_{lv}" for m in METRICS for lv in LEVELS), "min_samples")

    def budgets(self) -> dict[tuple[str, str], float]:
        out = {}
        for m in METRICS:
            for lv in LEVELS:
                b = getattr(self, f"{m}_{lv}")
                if b is not None:
                    out[(m, lv)] = b
        return out

    def evaluate(self, journal: Journal) -> CheckResult:
        views = [
            v for v in call_views(journal) if v.outcome == "ok" and (v.call is None or v.call.complete is not False)
        ]
        samples: dict[str, list[tuple[float, CallView]]] = {m: [] for m in METRICS}
        for v in views:
            for m, x in call_metrics(v).items():
                samples[m].append((x, v))
        stats = []
        for m in METRICS:
            xs = [x for x, _ in samples[m]]
            if xs:
                stats.append(f"{m} p50={percentile(xs, 50):.3f}s p95={percentile(xs, 95):.3f}s (n={len(xs)})")
        summary = "; ".join(stats) if stats else "no successful calls"
        ev: list[Evidence] = []
        for (m, lv), bound in self.budgets().items():
            xs = sorted(samples[m], key=lambda p: p[0])
            if len(xs) < self.min_samples or not xs:
                ev.append(
                    Evidence(
                        f"{m} {lv}: {len(xs)} samples, need {self.min_samples}",
                        UNKNOWN,
                        None,
                        (),
                        None,
                        None,
                        None,
                        bound,
                    )
                )
                continue
            val = percentile([x for x, _ in xs], LEVELS[lv])
            if val <= bound:
                ev.append(Evidence(f"{m} {lv} = {val:.3f}s", PASS, None, (), None, None, val, bound))
                continue
            over = [(x, v) for x, v in xs if x > bound]
            worst = over[-1][1]
            att = tuple(a for _, v in over[-5:] for a in v.attempt_ids)
            ev.append(
                Evidence(
                    f"{m} {lv} = {val:.3f}s over budget; {len(over)} of {len(xs)} calls over {bound:g}s, "
                    f"slowest {over[-1][0]:.3f}s (call {worst.key})",
                    FAIL,
                    worst.key,
                    att,
                    worst.serving_attempt().lane if worst.serving_attempt() else None,
                    None,
                    val,
                    bound,
                )
            )
        if not self.budgets() and not views:
            return self.result(UNKNOWN, summary)
        return self.judge(ev, summary)
