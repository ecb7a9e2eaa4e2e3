"""Helpers every Block Kit builder uses: escaping, mentions, money, truncation, the message
envelope, the limits the SDK does not check, and a plain-text rendering for the CLI.

Builders are pure functions returning `Message` (blocks from `slack_sdk.models.blocks` plus
the `text` fallback every message needs). `slack_sdk` validates most limits when a block is
serialised; `message_problems` adds the ones it skips: at most 50 blocks per message (100 in
a modal or Home tab), section text up to 3,000 characters and each field up to 2,000.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject

from llmgov.models.redaction import redact_urls_in

MAX_MESSAGE_BLOCKS = 50
MAX_SURFACE_BLOCKS = 100  # modals and the Home tab
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_MESSAGE_TEXT = 40000
ELLIPSIS = "…"

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}\Z")  # \Z: "$" would let a trailing newline in
_USERGROUP_ID = re.compile(r"^S[A-Z0-9]{2,}\Z")

T = TypeVar("T")


# ---- mrkdwn --------------------------------------------------------------------------


# The one rule for text that came from outside the code: a user, a form, the registry, a
# billing tag, a Slack profile, an error from a source. Slack mrkdwn has no backslash
# escape, so each character that could start markup becomes its entity (`&<>`, the only
# three Slack decodes) or a look-alike that renders the same and formats nothing.
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_FORMATTING = {"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"}  # ∗ ˍ ∼ ˋ
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")
# A scheme (https://, mailto:) would make a bare URL a link; the defanged form is read alike.
_SCHEME = re.compile(r":(?=//)|(?<=mailto):|(?<=tel):|(?<=slack):", re.IGNORECASE)
_MRKDWN_CHARACTERS = re.compile(r"[&<>*_~`]")
_CODE_CHARACTERS = re.compile(r"[&<>`]")


# An underscore between two letters or digits (snake_case) can neither open nor close
# italics in Slack, so it stays; every other one could, and is replaced.
_INTRAWORD_UNDERSCORE = re.compile(r"(?<=[^\W_])_(?=[^\W_])")
_KEPT_UNDERSCORE = "\x00"  # a placeholder: the input holds no NUL once line breaks are folded


def _neutralise(text: str, characters: re.Pattern[str]) -> str:
    text = _LINE_BREAKS.sub(" ", redact_urls_in(text)).replace(_KEPT_UNDERSCORE, "")
    text = _INTRAWORD_UNDERSCORE.sub(_KEPT_UNDERSCORE, text)
    text = characters.sub(lambda m: _ENTITIES.get(m.group(0)) or _FORMATTING[m.group(0)], text)
    return _SCHEME.sub("[:]", text).replace(_KEPT_UNDERSCORE, "_")


def escape(text: str) -> str:
    """Outside text made inert in mrkdwn: no mention, link, formatting or line of its own.

    `&<>` become entities (so `<!here>`, `<@U…>`, `<!subteam^…>` and `<url|label>` show as
    typed), `* _ ~` and backticks become look-alikes (∗ ˍ ∼ ˋ; an underscore inside a word,
    as in snake_case, cannot format and stays), line breaks fold into a
    space, a URL scheme is defanged (`https[:]//…`) and a URL's credentials are redacted
    (`models.redaction`). Mentions are never revived from
    escaped text: `mention()` builds them from ids the code resolved.
    """
    return _neutralise(text, _MRKDWN_CHARACTERS)


def escape_code(text: str) -> str:
    """Outside text inside an inline code span (`` `…` ``): the same rule, except that
    `* _ ~` stay as typed (they format nothing in code, and a slug or a command must read
    right); a backtick still cannot close the span."""
    return _neutralise(text, _CODE_CHARACTERS)


_ESCAPED_MENTION = re.compile(r"&lt;@([UW][A-Z0-9]{2,})&gt;")


def escape_keeping_mentions(text: str) -> str:
    """For messages the code composes itself (refusals, parse errors), whose mentions
    `<@U123>` it built from resolved ids: escape `&<>`, then let those user mentions render
    again. `<!channel>`, `<!here>`, user groups and links stay escaped; the composed text's
    own formatting and lines stay. Outside text inside it must have gone through `escape`
    first, so it holds no `<` left to revive.
    """
    escaped = "".join(_ENTITIES.get(c, c) for c in text)
    return _ESCAPED_MENTION.sub(r"<@\1>", escaped)


def mention(user_id: str) -> str:
    if not _USER_ID.match(user_id):
        raise ValueError(f"{user_id!r} is not a Slack user id")
    return f"<@{user_id}>"


def usergroup_mention(group_id: str) -> str:
    if not _USERGROUP_ID.match(group_id):
        raise ValueError(f"{group_id!r} is not a Slack user group id")
    return f"<!subteam^{group_id}>"


def person(slack_id: str | None, label: str | None, *, active: bool = True) -> str:
    """A mention when we know the Slack id, else the escaped name; marks people who left."""
    text = mention(slack_id) if slack_id and _USER_ID.match(slack_id) else escape(label or "?")
    return text if active else f"{text} (left)"


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending with … when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(ELLIPSIS), 0)].rstrip() + ELLIPSIS


_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def money(amount: Decimal | float | int | None, currency: str = "USD") -> str:
    """`$4,000`, `$1,250.50`, `3,000 CHF`; whole amounts without cents."""
    if amount is None:
        return "—"
    value = Decimal(str(amount))
    places = Decimal(1) if value == value.to_integral_value() else Decimal("0.01")
    number = f"{value.quantize(places, rounding=ROUND_HALF_UP):,}"
    symbol = _SYMBOLS.get(currency.upper())
    if symbol:
        return f"-{symbol}{number[1:]}" if number.startswith("-") else f"{symbol}{number}"
    return f"{number} {currency.upper()}"


# ---- long lists ----------------------------------------------------------------------


def split_for_limit(items: Sequence[T], max_items: int) -> tuple[list[T], int]:
    """The items to show and how many are left out (0 when all fit)."""
    if max_items < 0:
        raise ValueError("max_items must be >= 0")
    shown = list(items[:max_items])
    return shown, len(items) - len(shown)


def and_more(hidden: int, hint: str = "") -> ContextBlock:
    """The context line that ends a truncated list: "…and 7 more. Narrow with team:X"."""
    text = f"{ELLIPSIS}and {hidden} more."
    if hint:
        text += f" {hint}"
    return ContextBlock(elements=[MarkdownTextObject(text=text)])


def limited_blocks(
    items: Sequence[T],
    render: Callable[[T], Block],
    max_items: int,
    hint: str = "",
) -> list[Block]:
    """One block per item up to `max_items`, then an "and N more" line for the rest."""
    shown, hidden = split_for_limit(items, max_items)
    blocks = [render(item) for item in shown]
    if hidden:
        blocks.append(and_more(hidden, hint))
    return blocks


# ---- the message envelope and its checks ---------------------------------------------


class BlockLimitError(ValueError):
    """A message breaks a Block Kit limit; `problems` lists every one found."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def _sdk_check(block: Block | dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The block as a dict (unvalidated) and the SDK's own complaint about it, if any."""
    parsed = Block.parse(block) if isinstance(block, dict) else block
    if parsed is None:
        return (block if isinstance(block, dict) else {}), "not a Block Kit block"
    data = block if isinstance(block, dict) else parsed.get_non_null_attributes()
    try:
        parsed.validate_json()
    except SlackObjectFormationError as error:
        return data, str(error)
    return data, None


def _own_checks(data: dict[str, Any], index: int) -> list[str]:
    """The limits the SDK skips (and section text, said in our words)."""
    problems: list[str] = []
    kind = data.get("type")
    if kind == "section":
        section_text = (data.get("text") or {}).get("text", "")
        if len(section_text) > MAX_SECTION_TEXT:
            problems.append(
                f"block {index}: section text has {len(section_text)} characters "
                f"(max {MAX_SECTION_TEXT})"
            )
        fields = data.get("fields") or []
        if len(fields) > MAX_FIELDS:
            problems.append(f"block {index}: {len(fields)} fields (max {MAX_FIELDS})")
        for position, item in enumerate(fields):
            size = len(item.get("text", ""))
            if size > MAX_FIELD_TEXT:
                problems.append(
                    f"block {index}: field {position} has {size} characters (max {MAX_FIELD_TEXT})"
                )
    elif kind == "header":
        size = len((data.get("text") or {}).get("text", ""))
        if size > MAX_HEADER_TEXT:
            problems.append(f"block {index}: header has {size} characters (max {MAX_HEADER_TEXT})")
    elif kind == "context" and len(data.get("elements") or []) > MAX_CONTEXT_ELEMENTS:
        problems.append(f"block {index}: more than {MAX_CONTEXT_ELEMENTS} context elements")
    return problems


def message_problems(
    blocks: Sequence[Block | dict[str, Any]],
    text: str | None,
    *,
    max_blocks: int = MAX_MESSAGE_BLOCKS,
) -> list[str]:
    """Every limit the message breaks, including those the SDK does not check."""
    problems: list[str] = []
    if not text or not text.strip():
        problems.append("the message has no text fallback")
    elif len(text) > MAX_MESSAGE_TEXT:
        problems.append(f"text has {len(text)} characters (max {MAX_MESSAGE_TEXT})")
    if len(blocks) > max_blocks:
        problems.append(f"{len(blocks)} blocks (max {max_blocks})")
    for index, block in enumerate(blocks):
        data, sdk_problem = _sdk_check(block)
        own = _own_checks(data, index)
        problems += own
        if sdk_problem and not own:  # one message per broken limit is enough
            problems.append(f"block {index}: {sdk_problem}")
    return problems


def validate_message(
    blocks: Sequence[Block | dict[str, Any]],
    text: str | None,
    *,
    max_blocks: int = MAX_MESSAGE_BLOCKS,
) -> None:
    """Raise BlockLimitError listing every broken limit; return quietly when all fit."""
    problems = message_problems(blocks, text, max_blocks=max_blocks)
    if problems:
        raise BlockLimitError(problems)


@dataclass(frozen=True)
class Message:
    """A Slack message: Block Kit blocks plus the `text` fallback (notifications, a11y)."""

    text: str
    blocks: tuple[Block, ...]

    def block_dicts(self) -> list[dict[str, Any]]:
        return [block.to_dict() for block in self.blocks]

    def validate(self) -> Message:
        validate_message(self.blocks, self.text)
        return self

    def for_respond(self, response_type: str = "ephemeral", **extra: Any) -> dict[str, Any]:
        """Keyword arguments for Bolt's `respond()` (checked against the limits first)."""
        self.validate()
        return {
            "text": self.text,
            "blocks": self.block_dicts(),
            "response_type": response_type,
            **extra,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.block_dicts()}


# ---- plain text, for the CLI ---------------------------------------------------------

_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])")


def _plain_link(match: re.Match[str]) -> str:
    target, label = match.group(1), match.group(2)
    if target.startswith("@"):
        return "@" + (label.lstrip("@") if label else target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!subteam^"):
        return label or "@" + target.removeprefix("!subteam^")
    if target.startswith("!date^"):
        return label or target
    if target.startswith("!"):
        return "@" + target[1:]
    return f"{label} ({target})" if label and label != target else target


def mrkdwn_to_text(text: str) -> str:
    """mrkdwn as a terminal shows it: mentions as @U1, links as `label (url)`, no */_."""
    text = _LINK.sub(_plain_link, text)
    text = _BOLD.sub(r"\1", text)
    text = _ITALIC.sub(r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text_of(obj: dict[str, Any] | None) -> str:
    if not obj:
        return ""
    raw = obj.get("text", "")
    return mrkdwn_to_text(raw) if obj.get("type") == "mrkdwn" else raw


def _block_lines(data: dict[str, Any]) -> list[str]:
    kind = data.get("type")
    lines: list[str] = []
    if kind == "header":
        title = _text_of(data.get("text"))
        lines += [title, "=" * len(title)]
    elif kind == "section":
        if data.get("text"):
            lines.append(_text_of(data["text"]))
        for item in data.get("fields") or []:
            label, _, value = _text_of(item).partition("\n")
            lines.append(f"  {label}: {value}" if value else f"  {label}")
        accessory = data.get("accessory") or {}
        if accessory.get("type") == "button":
            lines.append(f"  [{_text_of(accessory.get('text'))}]")
    elif kind == "context":
        lines.append("  " + " · ".join(_text_of(e) for e in data.get("elements") or []))
    elif kind == "divider":
        lines.append("-" * 40)
    elif kind == "actions":
        buttons = [f"[{_text_of(e.get('text'))}]" for e in data.get("elements") or []]
        lines.append("  " + " ".join(buttons))
    elif kind == "input":
        lines.append(f"{_text_of(data.get('label'))}: ____")
    return lines


def blocks_to_text(blocks: Sequence[Block | dict[str, Any]]) -> str:
    """A readable plain-text rendering of blocks, for `llmgov ask` and logs.

    Sections are separated by a blank line; context lines and buttons stay with the block
    before them.
    """
    out: list[str] = []
    for block in blocks:
        data = block if isinstance(block, dict) else block.to_dict()
        lines = _block_lines(data)
        if not lines:
            continue
        if out and data.get("type") in ("section", "header"):
            out.append("")
        out += lines
    return "\n".join(out).rstrip() + "\n"


__all__ = [
    "MAX_FIELD_TEXT",
    "MAX_MESSAGE_BLOCKS",
    "MAX_SECTION_TEXT",
    "MAX_SURFACE_BLOCKS",
    "BlockLimitError",
    "Message",
    "and_more",
    "blocks_to_text",
    "escape",
    "escape_code",
    "escape_keeping_mentions",
    "limited_blocks",
    "mention",
    "message_problems",
    "money",
    "mrkdwn_to_text",
    "person",
    "split_for_limit",
    "truncate",
    "usergroup_mention",
    "validate_message",
]
