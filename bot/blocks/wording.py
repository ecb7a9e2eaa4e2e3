"""The jinja2 environment for message wording (`templates/*.md.j2`), shared by the alert,
digest and gap-review builders.

Autoescape is off (the output is Slack mrkdwn, not HTML); user and data text goes through
the `esc` filter (`bot.blocks.common.escape`: no mention, link, formatting or line break of
its own), or `code` inside an inline code span (`escape_code`), and mentions are built from
resolved ids before they reach a template. Each template is a set of macros; `macro(template, name)` returns one, so
the Block Kit builders decide the layout and the templates only the words.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from llmgov import templates
from llmgov.bot.blocks.common import escape, escape_code, money

# `__path__`, not `__file__`: an editable install made before templates/ became a package
# still finds it, as a namespace package without a file.
TEMPLATE_DIR = Path(next(iter(templates.__path__)))


def _money(amount: Any, currency: str = "USD", signed: bool = False) -> str:
    if amount is None or isinstance(amount, jinja2.Undefined) or amount == "":
        return "—"
    value = Decimal(str(amount)).quantize(Decimal("0.01"))
    text = money(value, currency)
    return f"+{text}" if signed and value > 0 else text


def _pct(value: Any, signed: bool = False) -> str:
    if value is None or isinstance(value, jinja2.Undefined):
        return "—"
    return f"{float(value):+.0f}%" if signed else f"{float(value):.0f}%"


def _fmt(value: Any, spec: str, scale: float = 1) -> str:
    """format(value * scale, spec) for a number; "—" when a detail is missing."""
    if value is None or isinstance(value, jinja2.Undefined | str):
        return "—"
    try:
        return format(float(value) * scale, spec)
    except (TypeError, ValueError):
        return "—"


def _esc(value: Any) -> str:
    if value is None or isinstance(value, jinja2.Undefined):
        return ""
    return escape(str(value))


def _code(value: Any) -> str:
    if value is None or isinstance(value, jinja2.Undefined):
        return ""
    return escape_code(str(value))


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=False,  # mrkdwn, not HTML: escaping is the `esc` filter's job
        undefined=jinja2.ChainableUndefined,  # a detail a check did not set renders empty
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["esc"] = _esc
    env.filters["code"] = _code
    env.filters["money"] = _money
    env.filters["pct"] = _pct
    env.filters["fmt"] = _fmt
    return env


def macro(template: str, name: str):
    """A macro of `templates/<template>`, callable like a function returning a string."""
    return getattr(environment().get_template(template).module, name)


def render(template: str, name: str, *args: Any, **kwargs: Any) -> str:
    """Call a macro and strip the whitespace the template layout leaves around it."""
    return str(macro(template, name)(*args, **kwargs)).strip()


__all__ = ["environment", "macro", "render"]
