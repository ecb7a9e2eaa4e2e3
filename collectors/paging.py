"""Following paging tokens safely: a token that comes back again, or a listing that never
ends, stops the read with a SourceError instead of requesting the same pages forever.

AWS APIs page with a token (`NextToken`, `NextPageToken`): each response carries the token
of the next page, and the last one carries none. A buggy or hostile endpoint (or an
emulator's quirk) can send a token it already sent; followed blindly, the loop never ends,
and on Cost Explorer every page is billed. botocore's own paginators only notice a token
repeated back to back, so the collectors' paginated loops go through `PageTokens`:
`follow_pages` for loops that pass the token back by hand, `checked_pages` around a botocore
paginator. The SourceError fails the whole read: the collectors fetch everything before they
write, so nothing partial is stored; `collectors.run` records the error for the source and
scope, and the checks report it as `stale_data`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from llmgov.models.errors import SourceError

# A backstop, far above any real listing the collectors read (10,000 CloudWatch or Cost
# Explorer pages is millions of rows), that still stops a loop whose tokens never repeat.
MAX_PAGES = 10_000


class PageTokens:
    """The tokens one paginated read has received so far, checked page by page."""

    def __init__(self, api: str, *, account: str | None = None, max_pages: int = MAX_PAGES):
        self.api = api  # e.g. "Cost Explorer GetCostAndUsage", for the error message
        self.account = account
        self.max_pages = max_pages
        self.pages = 0
        self._page_of_token: dict[str, int] = {}  # token → the page that sent it

    def next_token(self, token: str | None) -> str | None:
        """The token to request next (None: that was the last page), from the token the
        page just received carries; SourceError when it was sent before or when there have
        been too many pages."""
        self.pages += 1
        if not token:
            return None
        first_page = self._page_of_token.get(token)
        if first_page is not None:
            raise SourceError(
                f"{self._source()} sent the paging token of page {first_page} again with page "
                f"{self.pages}, so its pages would repeat forever; the read was stopped and "
                "failed as a whole. The next collection retries; if it happens again, "
                "check what AWS_ENDPOINT_URL points at (a proxy or an emulator?) or report the "
                "repeated token to AWS Support."
            )
        if self.pages >= self.max_pages:
            raise SourceError(
                f"{self._source()} still had more pages after {self.max_pages:,}, more than "
                "any real listing; the read was stopped, as a guard against a paging loop, and "
                "failed as a whole. If the data really is that large, collect a shorter window "
                "(`llmgov collect --since DATE`); otherwise check what "
                "AWS_ENDPOINT_URL points at or report it to AWS Support."
            )
        self._page_of_token[token] = self.pages
        return token

    def _source(self) -> str:
        return f"{self.api} for account {self.account}" if self.account else self.api


def follow_pages(
    call: Callable[..., dict[str, Any]],
    arguments: dict[str, Any],
    *,
    token: str,
    api: str,
    account: str | None = None,
    max_pages: int = MAX_PAGES,
) -> Iterator[dict[str, Any]]:
    """Every response of `call(**arguments)`, passing each response's `token` field back
    as the request's `token` argument until a response has none."""
    tokens = PageTokens(api, account=account, max_pages=max_pages)
    request = dict(arguments)
    while True:
        response = call(**request)
        next_token = tokens.next_token(response.get(token))
        yield response
        if next_token is None:
            return
        request[token] = next_token


def checked_pages(
    pages: Iterable[dict[str, Any]],
    *,
    token: str,
    api: str,
    account: str | None = None,
    max_pages: int = MAX_PAGES,
) -> Iterator[dict[str, Any]]:
    """The pages of a botocore paginator (which keep their `token` field), with the checks
    botocore leaves out: a token seen on any earlier page, and the page limit."""
    tokens = PageTokens(api, account=account, max_pages=max_pages)
    for page in pages:
        tokens.next_token(page.get(token))
        yield page


__all__ = ["MAX_PAGES", "PageTokens", "checked_pages", "follow_pages"]
