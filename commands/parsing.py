"""Tokenising slash-command text, shared by every command.

Slack sends command text with `&`, `<` and `>` escaped, and (with `should_escape: true` in the
manifest) mentions, channels, user groups and emails as escapes: `<@U123|ana>`,
`<#C123|search>`, `<!subteam^S123|@leads>`, `<mailto:ana@example.com|ana@example.com>`.
`tokenize` turns that into typed tokens; quoted phrases ("..." or “...”) stay one word.

Every entry point refuses control characters with `control_character_problem` (tokenize does it
for command text): Slack never sends them, but a forged request or `llmgov ask` can, and
PostgreSQL refuses NUL in text.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from llmgov.models.errors import BadInput
from llmgov.models.text import CONTROL, control_character_problem


class TokenKind(enum.StrEnum):
    WORD = "word"
    USER = "user"  # value: U.../W... id, label: the name Slack gave
    CHANNEL = "channel"  # value: C.../G... id
    USERGROUP = "usergroup"  # value: S... id
    SPECIAL = "special"  # <!here>, <!channel>, <!everyone>
    LINK = "link"  # value: the URL


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    value: str
    label: str | None = None
    raw: str = ""

    @property
    def is_word(self) -> bool:
        return self.kind is TokenKind.WORD

    def key_value(self) -> tuple[str, str] | None:
        """`team:search` → ("team", "search"); None for anything else."""
        if self.kind is not TokenKind.WORD or ":" not in self.value:
            return None
        key, _, value = self.value.partition(":")
        if not key or not value:
            return None
        return key.lower(), value


class ParseError(BadInput):
    """What was wrong with the command text, and one correct example."""

    def __init__(self, message: str, example: str):
        self.message = message
        self.example = example
        super().__init__(f"{message} For example: {example}")


_ESCAPE = re.compile(r"<([^<>]*)>")
_QUOTES = {'"': '"', "“": "”", "„": "“", "'": "'"}
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))  # &amp; last: no double decoding


def unescape(text: str) -> str:
    """Undo Slack's escaping of `&`, `<` and `>` in command text."""
    for entity, char in _ENTITIES:
        text = text.replace(entity, char)
    return text


def _escape_token(body: str, raw: str) -> Token:
    target, _, label = body.partition("|")
    label = unescape(label) if label else None
    if target.startswith("@"):
        return Token(TokenKind.USER, target[1:], label.lstrip("@") if label else None, raw)
    if target.startswith("#"):
        return Token(TokenKind.CHANNEL, target[1:], label, raw)
    if target.startswith("!subteam^"):
        return Token(TokenKind.USERGROUP, target.removeprefix("!subteam^"), label, raw)
    if target.startswith("!"):
        return Token(TokenKind.SPECIAL, target[1:], label, raw)
    if target.startswith("mailto:"):
        return Token(TokenKind.WORD, unescape(target.removeprefix("mailto:")), None, raw)
    return Token(TokenKind.LINK, unescape(target), label, raw)


def tokenize(text: str) -> list[Token]:
    """Split command text into tokens (see the module docstring).

    ParseError when the text holds a control character; its example is the same text without
    them (what to send instead), or `help` when that is empty or too long to quote."""
    problem = control_character_problem(text, "The command text")
    if problem is not None:
        cleaned = CONTROL.sub("", text).strip()
        raise ParseError(problem, cleaned if 0 < len(cleaned) <= 200 else "help")
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
            continue
        if char == "<":
            end = text.find(">", i)
            if end != -1:
                raw = text[i : end + 1]
                tokens.append(_escape_token(raw[1:-1], raw))
                i = end + 1
                continue
        if char in _QUOTES:
            close = _QUOTES[char]
            end = text.find(close, i + 1)
            if end == -1 and char in "“„":  # phones mix curly and straight quotes
                end = text.find('"', i + 1)
            if end != -1:
                raw = text[i : end + 1]
                tokens.append(Token(TokenKind.WORD, unescape(raw[1:-1]), None, raw))
                i = end + 1
                continue
        end = i
        while end < n and not text[end].isspace():
            end += 1
        raw = text[i:end]
        tokens.append(Token(TokenKind.WORD, unescape(raw), None, raw))
        i = end
    return tokens


_AMOUNT = re.compile(r"^(?P<symbol>[$€£])?(?P<number>\d[\d,]*(?:\.\d+)?)(?P<k>[kK])?$")
_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP"}
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")


def parse_amount(text: str, example: str) -> tuple[Decimal, str | None]:
    """`4000`, `4,000.50`, `$4000`, `4k` → (Decimal, currency or None)."""
    match = _AMOUNT.match(text.strip())
    if not match:
        raise ParseError(f"`{text}` is not an amount of money.", example)
    number = match.group("number")
    if "," in number and not re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", number):
        raise ParseError(f"`{text}` has misplaced thousands separators.", example)
    try:
        amount = Decimal(number.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the regex only lets digits through
        raise ParseError(f"`{text}` is not an amount of money.", example) from None
    if match.group("k"):
        amount *= 1000
    symbol = match.group("symbol")
    return amount, _SYMBOLS[symbol] if symbol else None


def parse_currency(text: str, example: str) -> str:
    if not _CURRENCY.match(text):
        raise ParseError(f"`{text}` is not a currency code like USD or EUR.", example)
    return text.upper()


__all__ = [
    "ParseError",
    "Token",
    "TokenKind",
    "control_character_problem",
    "parse_amount",
    "parse_currency",
    "tokenize",
    "unescape",
]
