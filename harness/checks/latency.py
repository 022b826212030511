"""The latency budget: time to first token, generation time, total call time and tool time."""

from __future__ import annotations

from dataclasses import dataclass

from ..journal import Journal
from ._calls import CallView, call_views, percentile
from .base import Check, CheckResult, Evidence, Verdict, register

PASS, FAIL, UNKNOWN = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN

METRICS = ("ttft", "generation", "total", "route", "model_wait", "post")
LEVELS = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "max": 100.0}


def call_metrics(v: CallView) -> dict[str, float]:
    """Seconds, for one call. For a successful call, the answer it took (the serving attempt) splits
    its time: ``route`` from the call's start to the start of the serving attempt (failed attempts,
    retry waits, fallback), ``model_wait`` from there to its first content token (queueing, time to
    first token), ``generation`` from first to last token, ``post`` from the last token to the call's
    end (the agent's own work after the answer); ``ttft`` is route + model wait and ``total`` the
    whole call. A failed call has only ``total``: the user waited for it too."""
    out: dict[str, float] = {}
    c = v.call
    start = c.t_start if c is not None else (v.attempts[0].t_start if v.attempts else v.t_start)
    end = v.t_end
    if end is not None:
        out["total"] = end - start
    if v.outcome != "ok" or (c is not None and c.complete is False):
        return out
    a = v.serving_attempt()
    if c is not None and c.t_first_token is not None:
        out["ttft"] = c.t_first_token - c.t_start
    elif a is not None and a.t_first_token is not None:
        out["ttft"] = a.t_first_token - start
    if a is None:
        return out
    out["route"] = max(0.0, a.t_start - start)
    if a.t_first_token is not None:
        out["model_wait"] = a.t_first_token - a.t_start
    if a.generation_time is not None:
        out["generation"] = a.generation_time
    if a.t_last_token is not None and end is not None:
        out["post"] = max(0.0, end - a.t_last_token)
    return out


@register("latency_budget")
@dataclass(frozen=True)
class LatencyBudget(Check):
    """Percentiles of call times stay within budget; any subset of: time to first token,
    generation time, total time, and the split of a call's wait: route overhead (failed attempts,
    retry waits, fallback), model wait (queueing and first token on the lane that answered) and
    post (the agent's work after the answer). Nearest-rank percentiles.

    Catches the premium lane that is "up" but useless: queueing (F13), a slow first token (F14),
    throughput collapse (F15), or a router whose retries and fallback take longer than the user
    waits. Generation is measured apart from the rest (``call_metrics``). ``total`` counts failed
    calls too: a call that hung 60 s and then errored cost its user 60 s. ``UNKNOWN`` with fewer
    than ``min_samples`` calls for a budgeted metric.
    """

    timed = True

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
    route_p50: float | None = None
    route_p90: float | None = None
    route_p95: float | None = None
    route_p99: float | None = None
    route_max: float | None = None
    model_wait_p50: float | None = None
    model_wait_p90: float | None = None
    model_wait_p95: float | None = None
    model_wait_p99: float | None = None
    model_wait_max: float | None = None
    post_p50: float | None = None
    post_p90: float | None = None
    post_p95: float | None = None
    post_p99: float | None = None
    post_max: float | None = None
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
        views = call_views(journal)
        samples: dict[str, list[tuple[float, CallView]]] = {m: [] for m in METRICS}
        for v in views:
            for m, x in call_metrics(v).items():
                samples[m].append((x, v))
        stats = []
        for m in ("ttft", "generation", "total", "route"):
            xs = [x for x, _ in samples[m]]
            if xs:
                stats.append(f"{m} p50={percentile(xs, 50):.3f}s p95={percentile(xs, 95):.3f}s (n={len(xs)})")
        summary = "; ".join(stats) if stats else "no calls"
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
            served = worst.serving_attempt()
            lane = served.lane if served is not None else (worst.attempts[-1].lane if worst.attempts else None)
            failed = (
                "" if worst.outcome == "ok" else f", which {'failed' if worst.outcome == 'error' else 'ended unknown'}"
            )
            ev.append(
                Evidence(
                    f"{m} {lv} = {val:.3f}s over budget; {len(over)} of {len(xs)} calls over {bound:g}s, "
                    f"slowest {over[-1][0]:.3f}s (call {worst.key}{failed})",
                    FAIL,
                    worst.key,
                    att,
                    lane,
                    None,
                    val,
                    bound,
                )
            )
        if not self.budgets() and not views:
            return self.result(UNKNOWN, summary)
        return self.judge(ev, summary)
