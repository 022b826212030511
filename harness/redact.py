"""Redaction: what keeps credentials out of everything the harness stores or prints.

One module, used by every path that writes a string somewhere a person or a CI log will see it:
request headers and URLs as the lane journals them, upstream error bodies and failure texts
(``attempt.error``), agents' exception texts in call records, marks, the report, and the HTTP
servers' own log lines. Three layers, because no single one catches everything:

* **by name**: headers (``Authorization``, ``x-api-key``, ``x-amz-security-token``,
  ``Ocp-Apim-Subscription-Key`` ...) and query parameters (``key``, ``access_token``,
  ``X-Amz-Signature`` ...) that carry credentials in every major provider and cloud;
* **by shape**: values that look like a key wherever they appear in a stored string
  (``sk-...``, ``sk-ant-...``, ``AIza...``, ``AKIA...``, ``Bearer ...``, JWTs, SigV4 signatures);
* **by sight**: a credential the lane has redacted from a request is remembered (a bounded set,
  in this process), so an upstream that echoes it back in a 401 body, or an agent whose exception
  quotes it, is redacted too even when the key has no recognisable shape (Azure's 32 hex digits).

Redacted text is also made valid Unicode (a lone surrogate becomes U+FFFD), so whatever stores it
(JSON lines, an HTML report written as UTF-8) cannot fail on it.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

__all__ = [
    "REDACTED",
    "SECRET_HEADERS",
    "SECRET_PARAMS",
    "forget_all",
    "is_secret_header",
    "redact_headers",
    "redact_obj",
    "redact_text",
    "redact_url",
    "remember",
]

REDACTED = "[redacted]"

#: headers whose whole value is a credential, in every provider and cloud the lanes front
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",  # Anthropic
        "api-key",  # Azure OpenAI
        "x-goog-api-key",  # Gemini
        "x-goog-iam-authorization-token",
        "ocp-apim-subscription-key",  # Azure AI services / API Management
        "x-amz-security-token",  # AWS temporary credentials (Bedrock)
        "cookie",
        "set-cookie",
    }
)
#: words that make any other header a credential (``x-auth-token``, ``x-openrouter-api-key`` ...);
#: whole words between ``-``/``_`` only, so ``x-ratelimit-limit-tokens`` is left alone
_SECRET_HEADER_WORDS = re.compile(
    r"(?:^|[-_])(?:token|secret|password|passwd|credentials?|signature|cookie|session|auth|apikey"
    r"|api[-_]key|access[-_]key|subscription[-_]key)(?:$|[-_])"
)
#: query parameters (and ``name=value`` pairs in free text) whose value is a credential
SECRET_PARAMS = frozenset(
    {
        "key",  # Gemini
        "api_key",
        "api-key",
        "apikey",
        "access_token",
        "refresh_token",
        "id_token",
        "token",
        "client_secret",
        "secret",
        "password",
        "sig",  # Azure SAS
        "signature",
        "subscription-key",  # Azure API Management
        "x-amz-security-token",
        "x-amz-credential",
        "x-amz-signature",
        "x-goog-signature",
        "x-goog-credential",
    }
)

_PARAM_NAMES = "|".join(re.escape(p) for p in sorted(SECRET_PARAMS, key=len, reverse=True))
_HEADER_NAMES = "|".join(re.escape(h) for h in sorted(SECRET_HEADERS, key=len, reverse=True))
_B = r"(?<![A-Za-z0-9_])"  # a key-shaped token starts a word
#: (pattern, replacement) in the order applied; each keeps what names the secret and drops the secret
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # a header written out in text: "Authorization: Bearer ...", "x-api-key: ..." (to end of line)
    (re.compile(rf"(?i)(?<![A-Za-z0-9-])((?:{_HEADER_NAMES})\s*[:=]\s*)[^\r\n\"'<>]+"), rf"\1{REDACTED}"),
    # a query parameter or a name=value pair: "?key=...", "&X-Amz-Signature=...", "token=..."
    (re.compile(rf"(?i)(?<![A-Za-z0-9_.-])((?:{_PARAM_NAMES})=)[^&;#\s\"'<>]+"), rf"\1{REDACTED}"),
    # a JSON or Python mapping entry: "api_key": "...", 'access_token': '...'
    (re.compile(rf"(?i)([\"'](?:{_PARAM_NAMES}|authorization|x-api-key)[\"']\s*:\s*[\"'])[^\"']+"), rf"\1{REDACTED}"),
    # URL user info: https://user:password@host
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@"), rf"\1{REDACTED}@"),
    # credentials after an auth scheme, wherever they appear: a credential-looking value (12 or more
    # characters with a digit), so prose such as "token fallback answer" (a canonical answer) stays
    (
        re.compile(r"(?i)\b(Bearer|Basic|Token)\s+(?=[A-Za-z._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{12,}"),
        rf"\1 {REDACTED}",
    ),
    (re.compile(r"(?i)\b(Signature=)[0-9a-f]{16,}"), rf"\1{REDACTED}"),
    # key-shaped values
    (
        re.compile(
            _B + r"(?:sk-[A-Za-z0-9][A-Za-z0-9_-]{15,}"  # OpenAI sk-/sk-proj-, Anthropic sk-ant-, OpenRouter sk-or-
            r"|AIza[0-9A-Za-z_-]{30,}"  # Google API keys
            r"|ya29\.[0-9A-Za-z_-]{20,}"  # Google OAuth access tokens
            r"|(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}"  # AWS access key ids
            r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}"
            r"|hf_[A-Za-z0-9]{30,}|gsk_[A-Za-z0-9]{30,}|xai-[A-Za-z0-9]{30,}"
            r"|xox[abposr]-[A-Za-z0-9-]{10,}|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"
            r"|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})"  # JWTs
        ),
        REDACTED,
    ),
)
#: what starts a key-shaped value or a credential after an auth scheme (case-sensitive: fast)
_SHAPES = (
    r"[sr]k[-_]|AIza|ya29\.|A[KSB][IC]A|ACCA|gh[pousr]_|github_|hf_|gsk_|xai-|xox|eyJ"
    r"|[Bb]earer|BEARER|[Bb]asic|BASIC|[Tt]oken|TOKEN"
)
_SHAPE_FIRST = "srAyghxeBbTt"  # the first letters of _SHAPES: the lookahead fails fast elsewhere
#: a cheap gate: text without any of these cannot match a rule (most stored strings)
_MAYBE = re.compile(rf"(?=[=:@{_SHAPE_FIRST}])(?:[=:@]|{_SHAPES})")
#: the same gate for header values, searched once over all of them (``:`` is left out: every
#: ``Host`` has one, and a credential written after a header name comes with its scheme)
_MAYBE_HEADER = re.compile(rf"(?=[=@{_SHAPE_FIRST}])(?:[=@]|{_SHAPES})")

_MIN_REMEMBERED = 16  # shorter values are too likely to be ordinary words ("routechaos")
_MAX_REMEMBERED = 256
_seen: dict[str, None] = {}  # insertion-ordered: the oldest is forgotten first
_seen_lock = threading.Lock()


def remember(secret: str) -> None:
    """Redact ``secret`` from every string redacted from now on (in this process). The lane calls
    it for each credential it strips from a request, so an echo of that credential is caught."""
    secret = secret.strip()
    if len(secret) < _MIN_REMEMBERED or REDACTED in secret or secret in _seen:
        return
    with _seen_lock:
        _seen[secret] = None
        while len(_seen) > _MAX_REMEMBERED:
            del _seen[next(iter(_seen))]


def forget_all() -> None:
    """Forget every remembered credential (for tests)."""
    with _seen_lock:
        _seen.clear()


def _remember_header(value: str) -> None:
    scheme, sep, rest = value.partition(" ")
    remember(rest if sep and scheme.lower() in ("bearer", "basic", "token") else value)


@functools.lru_cache(maxsize=1024)
def is_secret_header(name: str) -> bool:
    """True when a header called ``name`` carries a credential (case-insensitive)."""
    name = name.lower()
    return name in SECRET_HEADERS or _SECRET_HEADER_WORDS.search(name) is not None


def redact_text(text: str) -> str:
    """``text`` with every credential replaced by ``[redacted]``, and made valid Unicode."""
    if _seen:
        for secret in tuple(_seen):
            if secret in text:
                text = text.replace(secret, REDACTED)
    if _MAYBE.search(text) is not None:
        for pattern, repl in _RULES:
            text = pattern.sub(repl, text)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: keep pairs, replace the lone ones
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers with every credential replaced by ``[redacted]`` (names lower-cased); the
    credentials are remembered, so an echo of one elsewhere is redacted too."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for k, v in items:
        name = k.lower()
        if is_secret_header(name):
            _remember_header(v)
            out[name] = REDACTED
        else:
            out[name] = v
    # the per-attempt path: one search over every value decides whether any needs redacting
    joined = "\n".join(out.values())
    if _MAYBE_HEADER.search(joined) is not None or not joined.isascii() or any(s in joined for s in tuple(_seen)):
        out = {k: v if v == REDACTED else redact_text(v) for k, v in out.items()}
    return out


_QUERY_PAIR = re.compile(r"([?&;])([^=&;#]*)=([^&;#]*)")


def redact_url(url: str) -> str:
    """A URL (or path and query) with every credential in it replaced: secret query parameters
    (``key=`` as Gemini has it, ``access_token=``, SigV4's ``X-Amz-Signature=`` ...), user info,
    and key-shaped values anywhere."""

    def pair(m: re.Match[str]) -> str:
        if unquote(m.group(2)).lower() not in SECRET_PARAMS or not m.group(3):
            return m.group(0)
        remember(unquote(m.group(3)))
        return f"{m.group(1)}{m.group(2)}={REDACTED}"

    if "?" in url or ";" in url:
        url = _QUERY_PAIR.sub(pair, url)
    return redact_text(url)


def redact_obj(obj: Any, _depth: int = 0) -> Any:
    """``obj`` (a JSON-like value) with every string in it redacted; containers are copied."""
    if isinstance(obj, str):
        return redact_text(obj)
    if _depth > 16:
        return REDACTED if isinstance(obj, dict | list | tuple) else obj
    if isinstance(obj, dict):
        return {redact_text(k) if isinstance(k, str) else k: redact_obj(v, _depth + 1) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact_obj(v, _depth + 1) for v in obj]
    return obj
