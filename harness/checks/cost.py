"""What the run cost: billed tokens and USD per call and per episode, and the amplification of
the run's cost over the same successful work with no fault (see :mod:`harness.billing`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..billing import RunBill, bill_journal
from ..episodes import episodes
from ..journal import Journal
from ._calls import percentile
from .base import Check, CheckResult, Evidence, Verdict, register

PASS, FAIL, UNKNOWN = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN
_MAX_CITED = 20


def _usd(x: float) -> str:
    return f"${x:.4f}"


def _spread(values: list[float], money: bool) -> str:
    if not values:
        return "-"
    f = _usd if money else (lambda v: f"{v:.0f} tok")
    return f"p50 {f(percentile(values, 50))}, p95 {f(percentile(values, 95))}, total {f(sum(values))}"


@register("cost_budget")
@dataclass(frozen=True)
class CostBudget(Check):
    """The run's cost stays within budget, and faults did not multiply it.

    Catches the agent that survives every fault by paying for it: it re-sends a whole long
    conversation on every fault (each cut attempt billed its input and what was generated), or
    fails over to a lane whose prompt cache is cold, turn after turn. **Amplification** is the
    run's cost over the cost of the same successful work with no fault: each call's serving
    attempt, less the cache its failover lost (USD when a lane is priced, else billed tokens).
    ``max_call_cost`` bounds the ``percentile`` of the per-call cost, ``max_total_cost`` the run,
    ``max_wasted_share`` the share of the run's cost that bought nothing. Cost per lane and per
    episode is reported either way. ``UNKNOWN`` when nothing was billed."""

    max_amplification: float | None = 2.0
    max_call_cost: float | None = None
    max_total_cost: float | None = None
    max_wasted_share: float | None = None
    percentile: float = 95.0

    def validate(self) -> None:
        for name in ("max_amplification", "max_call_cost", "max_total_cost", "max_wasted_share"):
            value = getattr(self, name)
            self._require(value is None or value >= 0, f"{name} must be >= 0")
        if self.max_amplification is not None:
            self._require(self.max_amplification >= 1, "max_amplification must be >= 1 (1: no waste at all)")
        self._require(0 < self.percentile <= 100, "percentile must be in (0, 100]")

    def evaluate(self, journal: Journal) -> CheckResult:
        bill = bill_journal(journal)
        if bill.total_tokens == 0:
            return self.result(UNKNOWN, "nothing was billed (no attempt was answered)")
        money = bill.priced
        ev: list[Evidence] = []
        for lane, row in sorted(bill.lanes().items()):
            ev.append(
                Evidence(
                    f"lane {lane}: {_usd(row['cost'])}, {int(row['tokens'])} tokens billed "
                    f"({_usd(row['wasted_cost'])}, {int(row['wasted_tokens'])} tokens for discarded attempts)",
                    PASS,
                    lane=lane,
                    measured=row["cost"] if money else row["tokens"],
                )
            )
        ev += self._amplification(bill)
        ev += self._per_call(bill)
        if self.max_total_cost is not None:
            ok = bill.total <= self.max_total_cost
            ev.append(
                Evidence(
                    f"run cost {_usd(bill.total)} (budget {_usd(self.max_total_cost)})",
                    PASS if ok else FAIL,
                    measured=bill.total,
                    bound=self.max_total_cost,
                )
            )
        calls = list(bill.calls.values()) if money else [float(t) for t in bill.call_tokens.values()]
        episodes = self._episodes(journal, bill, money)
        summary = f"{bill.line()}; per call {_spread(calls, money)}"
        if episodes:
            summary += f"; per episode {_spread(episodes, money)}"
        return self.judge(ev, summary)

    def _amplification(self, bill: RunBill) -> list[Evidence]:
        amp = bill.amplification
        if amp is None:
            return [Evidence("no call was answered: amplification cannot be told", UNKNOWN)]
        wasted = sorted(bill.wasted.values(), key=lambda b: -(b.cost or b.tokens))
        what = (
            f"run cost {_usd(bill.total)} against {_usd(bill.baseline)} for the same successful work with no fault"
            if bill.priced
            else f"{bill.total_tokens} tokens billed against {bill.baseline_tokens} for the same successful work"
        )
        what += (
            f": amplification {amp:.2f}x ({len(wasted)} discarded attempts billed {bill.wasted_tokens} tokens"
            f", {_usd(bill.wasted_cost)}; cache lost to failover {bill.cache_lost_tokens} tokens"
            f", {_usd(bill.cache_lost_cost)}; wasted share {bill.wasted_share:.0%})"
        )
        out = []
        if self.max_amplification is not None:
            ok = amp <= self.max_amplification
            ids = tuple(b.attempt for b in wasted[:_MAX_CITED])
            out.append(Evidence(what, PASS if ok else FAIL, attempts=ids, measured=amp, bound=self.max_amplification))
        else:
            out.append(Evidence(what, PASS, measured=amp))
        if self.max_wasted_share is not None:
            ok = bill.wasted_share <= self.max_wasted_share
            out.append(
                Evidence(
                    f"wasted share {bill.wasted_share:.0%} (bound {self.max_wasted_share:.0%})",
                    PASS if ok else FAIL,
                    measured=bill.wasted_share,
                    bound=self.max_wasted_share,
                )
            )
        return out

    def _per_call(self, bill: RunBill) -> list[Evidence]:
        if self.max_call_cost is None or not bill.calls:
            return []
        costs = list(bill.calls.values())
        p = percentile(costs, self.percentile)
        ok = p <= self.max_call_cost
        over = [k for k, c in bill.calls.items() if c > self.max_call_cost]
        return [
            Evidence(
                f"p{self.percentile:g} call cost {_usd(p)} (budget {_usd(self.max_call_cost)}; "
                f"{len(over)} of {len(costs)} calls over it" + (f": {', '.join(over[:5])}" if over else "") + ")",
                PASS if ok else FAIL,
                call=over[0] if over and not ok else None,
                measured=p,
                bound=self.max_call_cost,
            )
        ]

    @staticmethod
    def _episodes(journal: Journal, bill: RunBill, money: bool) -> list[float]:
        """Each agent-loop episode's cost (only episodes of more than one step: a single call is
        already counted per call)."""
        out = []
        for ep in episodes(journal):
            if len(ep.steps) < 2:
                continue
            billed = [bill.attempts[a.id] for a in ep.attempts if a.id in bill.attempts]
            out.append(sum(b.cost for b in billed) if money else float(sum(b.tokens for b in billed)))
        return out
