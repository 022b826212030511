"""Conversation agents that keep state across turns and fall back between lanes of one API.

A multi-turn agent carries what its provider minted: Anthropic thinking blocks with their
signatures, a Responses ``previous_response_id``. A fallback lane (another deployment) never
accepts either, and may have a smaller context window. :class:`ConversationAgent` is the correct
one: when a turn moves to another lane it drops the state that lane did not mint (thinking
blocks signed elsewhere; ``previous_response_id`` replaced by the whole conversation), and when a
lane still refuses the conversation for its size it trims the oldest turns and re-sends.

The flawed ones, each failing exactly the check named for its flaw:

- :class:`ForwardsForeignState` forwards the conversation as it is (thinking blocks signed by
  the premium lane, the premium lane's ``previous_response_id``), and only once refused re-sends
  it without them: ``fallback_compatible`` fails (its first attempt on the fallback is refused).
- :class:`RetriesWholeConversation` re-sends the whole long conversation on every fault, on the
  same lane, several times: it gets its answers, and ``cost_budget`` shows what it paid.

Each turn is one ``drill.call``::

    agent = ConversationAgent([("premium", drill.url("premium"), "anthropic"),
                               ("fallback", drill.url("fallback"), "anthropic")])
    for prompt in prompts:
        drill.call(agent.turn, prompt)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai

from harness.capabilities import rejection_reason
from harness.drill import call_headers

__all__ = ["ConversationAgent", "ForwardsForeignState", "RetriesWholeConversation", "Turn"]

#: what a lost or cut answer raises: any failure but a refusal of the request (the SDKs' status
#: and connection errors, and the transport's own from a stream read: httpx or httpx2)
_TRANSIENT = (Exception,)


@dataclass
class Turn:
    """One exchange of the conversation, and the lane whose state it carries."""

    prompt: str
    lane: str
    answer: str
    content: list[dict[str, Any]] = field(default_factory=list)  # Anthropic blocks as sent back
    response_id: str | None = None  # Responses: the id the lane issued


class ConversationAgent:
    """A conversation over lanes of one dialect (``anthropic`` with thinking, or
    ``openai-responses`` with ``previous_response_id``), the first lane preferred.

    Per turn: try each lane in order; a transient failure (5xx, 429, 529, a lost connection)
    moves on to the next lane; a refusal for the conversation itself (its state, its size) is
    adapted to on the same lane, at most ``adapt_attempts`` times."""

    #: before a turn goes to a lane, drop the state that lane did not mint
    drop_foreign_state = True
    #: after a refusal for the conversation: trim it (too long) or re-send it without any state
    adapt_on_refusal = True
    retries_per_lane = 0
    #: consecutive failed turns after which a lane is skipped for ``cooldown_turns`` turns
    breaker_after = 2
    cooldown_turns = 3

    def __init__(
        self,
        lanes: Sequence[tuple[str, str, str]],
        *,
        system: str = "",
        max_tokens: int = 2048,
        adapt_attempts: int = 2,
        time_scale: float = 1.0,
    ) -> None:
        self.lanes = list(lanes)
        dialects = {d for _, _, d in self.lanes}
        if len(dialects) != 1 or not dialects <= {"anthropic", "openai-responses"}:
            raise ValueError("lanes must all speak anthropic or all speak openai-responses")
        self.dialect = dialects.pop()
        self.system = system
        self.max_tokens = max_tokens
        self.adapt_attempts = adapt_attempts
        self.time_scale = time_scale
        self.history: list[Turn] = []
        self._clients: dict[str, Any] = {}
        self._failures: dict[str, int] = {}  # lane -> consecutive failed turns
        self._skip: dict[str, int] = {}  # lane -> turns left to skip it

    # -- clients -------------------------------------------------------------------------------
    def _client(self, name: str, url: str) -> Any:
        if name not in self._clients:
            if self.dialect == "anthropic":
                self._clients[name] = anthropic.Anthropic(base_url=url, api_key="sk-drill", max_retries=0)
            else:
                self._clients[name] = openai.OpenAI(base_url=url.rstrip("/") + "/v1", api_key="sk-drill", max_retries=0)
        return self._clients[name]

    # -- what goes on the wire -------------------------------------------------------------------
    def messages(self, prompt: str, lane: str) -> list[dict[str, Any]]:
        """The Anthropic conversation for ``lane``: thinking blocks only where ``lane`` signed
        them (unless this agent forwards everything)."""
        out: list[dict[str, Any]] = []
        for t in self.history:
            out.append({"role": "user", "content": t.prompt})
            blocks = t.content or [{"type": "text", "text": t.answer}]
            if self.drop_foreign_state and t.lane != lane:
                blocks = [b for b in blocks if b.get("type") not in ("thinking", "redacted_thinking")]
            out.append({"role": "assistant", "content": blocks})
        out.append({"role": "user", "content": prompt})
        return out

    def responses_input(self, prompt: str, lane: str) -> tuple[Any, str | None]:
        """Responses input for ``lane``: only the new prompt with the last turn's id when that
        lane issued it; else the whole conversation, with no id."""
        last = self.history[-1] if self.history else None
        if last is not None and last.response_id and (last.lane == lane or not self.drop_foreign_state):
            return prompt, last.response_id
        items: list[dict[str, Any]] = []
        for t in self.history:
            items.append({"role": "user", "content": t.prompt})
            items.append({"role": "assistant", "content": t.answer})
        items.append({"role": "user", "content": prompt})
        return items, None

    def _send(self, name: str, url: str, prompt: str) -> Turn:
        client = self._client(name, url)
        headers = call_headers()
        if self.dialect == "anthropic":
            with client.messages.stream(
                model="claude-drill",
                max_tokens=self.max_tokens,
                thinking={"type": "enabled", "budget_tokens": 1024},
                system=self.system or anthropic.NOT_GIVEN,
                messages=self.messages(prompt, name),
                extra_headers=headers,
            ) as stream:
                msg = stream.get_final_message()
            if msg.stop_reason is None:
                raise anthropic.APIError("stream ended before message_stop", request=None, body=None)
            content = [b.model_dump(exclude_none=True) for b in msg.content]
            text = "".join(b.text for b in msg.content if b.type == "text")
            return Turn(prompt, name, text, content=content)
        inp, prev = self.responses_input(prompt, name)
        resp = client.responses.create(
            model="gpt-drill",
            input=inp,
            previous_response_id=prev if prev else openai.NOT_GIVEN,
            instructions=self.system or openai.NOT_GIVEN,
            extra_headers=headers,
        )
        return Turn(prompt, name, resp.output_text, response_id=resp.id)

    # -- one turn ----------------------------------------------------------------------------------
    def adapt(self, reason: str | None) -> bool:
        """Change the conversation after a refusal for it; False when there is nothing to change."""
        if not self.adapt_on_refusal:
            return False
        if reason == "context_length" and len(self.history) > 0:
            del self.history[: max(1, len(self.history) // 2)]  # the oldest half
            return True
        if reason == "foreign_state":
            for t in self.history:  # drop every thinking block and id: re-send in full
                t.content = [b for b in t.content if b.get("type") not in ("thinking", "redacted_thinking")]
                t.response_id = None
            return True
        return False

    def turn(self, prompt: str) -> dict[str, Any]:
        """Answer ``prompt`` in the conversation; the result names the lane that answered."""
        errors: list[str] = []
        for name in list(self._skip):
            self._skip[name] -= 1
            if self._skip[name] <= 0:
                del self._skip[name]
        lanes = [lane for lane in self.lanes if lane[0] not in self._skip] or self.lanes
        for name, url, _ in lanes:
            adapted = 0
            tries = 0
            while True:
                try:
                    t = self._send(name, url, prompt)
                except (anthropic.BadRequestError, openai.BadRequestError) as exc:
                    reason = rejection_reason(_error_of(exc))
                    errors.append(f"{name}: 400 {reason or 'bad request'}")
                    if adapted < self.adapt_attempts and self.adapt(reason):
                        adapted += 1
                        continue
                    break  # refused for good on this lane
                except _TRANSIENT as exc:
                    errors.append(f"{name}: {getattr(exc, 'status_code', None) or type(exc).__name__}")
                    if tries < self.retries_per_lane:
                        tries += 1
                        time.sleep(0.2 * self.time_scale)
                        continue
                    self._failures[name] = self._failures.get(name, 0) + 1
                    if self.breaker_after and self._failures[name] >= self.breaker_after:
                        self._skip[name] = self.cooldown_turns
                        self._failures[name] = 0
                    break  # transient: the next lane
                self._failures[name] = 0
                self.history.append(t)
                return {"text": t.answer, "lane": name, "complete": True}
        return {"text": None, "lane": None, "complete": False, "error": "; ".join(errors) or "no lane"}


def _error_of(exc: Any) -> dict[str, Any] | None:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        return err if isinstance(err, dict) else None
    return None


class ForwardsForeignState(ConversationAgent):
    """Forwards the conversation to the fallback as it is: thinking blocks signed by the premium
    lane, the premium lane's ``previous_response_id``. Refused, it re-sends without them, so no
    turn is lost, but every failover starts with a refused attempt it could have known about."""

    drop_foreign_state = False


class RetriesWholeConversation(ConversationAgent):
    """Re-sends the whole long conversation on every fault, three more times on the same lane,
    before it falls back, and never sets the failing lane aside: every cut try is billed its
    whole input and what was generated before the cut."""

    retries_per_lane = 3
    breaker_after = 0
