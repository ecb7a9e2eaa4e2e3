"""The spend ledger's rules over the billed facts: which cost rows are LLM spend, which
source counts for an account and day, and the one currency of an organisation.

Every surface (the checks, `/llm-cost`, the digest, the gap review, `/llm-owner`, the demo)
sums billed LLM spend through `billed_usage()`, so the rules live here once:

- **Charge kinds.** Each cost row has a `charge_kind`: `usage`, or one of the adjustments
  `credit`, `refund`, `tax`, `fee`, `purchase` (commitment purchases and their recurring
  fees), `discount`, `adjustment`. Only `usage` is LLM spend; adjustments are kept apart and
  shown as such, never in a total. FOCUS `ChargeCategory`, CUR 2.0
  `line_item_line_item_type` and Cost Explorer `RECORD_TYPE` map onto them below.
- **One source per account and day.** The billing exports (FOCUS, CUR 2.0, or either read
  through Athena) describe the same bill as Cost Explorer. For each (account, day) only the
  facts of one source count: an export over Cost Explorer (`SOURCE_RANK`); between two
  exports, the one imported last (then the source name, to break a tie). The others are
  marked `superseded` by `settle()`, which every writer of cost facts calls for the days
  it wrote. A day no source billed falls back to the token estimate (usage facts).
- **Corrections.** A FOCUS `ChargeClass = Correction` row, or a row charged in a later
  billing period than its usage day (a CUR adjustment), is its own series: it adds to its
  original day, and a later import of the original period does not replace it (nor it them).
- **One currency.** An organisation's billed facts are in one currency; a source in another
  is refused (`check_currency`).
- **Finite amounts.** A row's amount must be within `MAX_AMOUNT` either way.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import and_, case, exists, literal, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from llmgov.models.errors import BadInput
from llmgov.models.facts import CostFact
from llmgov.models.registry import Platform, Workload

USAGE = "usage"
ADJUSTMENT_KINDS = ("credit", "refund", "tax", "fee", "purchase", "discount", "adjustment")
CHARGE_KINDS = (USAGE, *ADJUSTMENT_KINDS)

# The largest amount one billing row may carry, either way (a trillion in the bill's
# currency): anything beyond is a corrupt export, refused with the row named.
MAX_AMOUNT = Decimal(10) ** 12

# FOCUS 1.x ChargeCategory → kind (Usage is usage; everything else is an adjustment)
FOCUS_CATEGORIES = {
    "usage": USAGE,
    "credit": "credit",
    "tax": "tax",
    "purchase": "purchase",
    "adjustment": "adjustment",
    "refund": "refund",
}
# CUR 2.0 line_item_line_item_type → kind
CUR_LINE_ITEM_TYPES = {
    "usage": USAGE,
    "discountedusage": USAGE,  # usage covered by a reservation
    "savingsplancoveredusage": USAGE,
    "credit": "credit",
    "refund": "refund",
    "tax": "tax",
    "fee": "fee",
    "rifee": "purchase",
    "savingsplanrecurringfee": "purchase",
    "savingsplanupfrontfee": "purchase",
    "savingsplannegation": "discount",
    "bundleddiscount": "discount",
    "edpdiscount": "discount",
    "privateratediscount": "discount",
    "distributordiscount": "discount",
}
# Cost Explorer RECORD_TYPE values that are usage (the query is filtered on them)
CE_USAGE_RECORD_TYPES = ("Usage", "DiscountedUsage", "SavingsPlanCoveredUsage")

# platforms whose workloads' attributed compute (any service) is their spend
SELF_HOSTED_PLATFORMS = (Platform.SELF_HOSTED.value, Platform.SAGEMAKER.value)

# precedence of the billed sources for an (account, day): the lower rank counts
SOURCE_RANK = {"focus": 1, "cur2": 1, "athena": 1, "cost_explorer": 2}
OTHER_RANK = 3


def _plain(value: str | None) -> str:
    return "".join(ch for ch in (value or "").lower() if ch.isalnum())


def charge_kind(fmt: str, category: str | None) -> str:
    """The kind of a billing-export row from its FOCUS ChargeCategory or CUR 2.0 line item
    type. No category at all (an export without the column) is usage; a category we do not
    know is an `adjustment`: kept, shown, never counted as LLM spend."""
    key = _plain(category)
    if not key:
        return USAGE
    table = FOCUS_CATEGORIES if fmt == "focus" else CUR_LINE_ITEM_TYPES
    return table.get(key, "adjustment")


def is_correction(charge_class: str | None) -> bool:
    return _plain(charge_class) == "correction"


def check_amount(amount: Decimal, name: str = "the cost") -> None:
    """Refuse an amount that is not finite or outside ±MAX_AMOUNT (raises ValueError)."""
    if not amount.is_finite() or abs(amount) > MAX_AMOUNT:
        raise ValueError(
            f"{name} {amount:.6g} is outside the accepted range of ±{MAX_AMOUNT:,.0f} "
            "per row (a corrupt export?)"
        )


def billed_usage() -> ColumnElement[bool]:
    """The SQL condition of a cost fact that is billed LLM spend in the ledger."""
    return and_(CostFact.is_llm.is_(True), counted_usage())


def counted_usage() -> ColumnElement[bool]:
    """Billed usage of any service that counts in the ledger (not superseded, not an
    adjustment). A workload's spend is the usage attributed to it, LLM or not (a self-hosted
    fleet's instance hours are its spend); spend no workload claims counts only when it is
    LLM spend (`billed_usage`)."""
    return and_(CostFact.charge_kind == USAGE, CostFact.superseded.is_(False))


def ledger_billed() -> ColumnElement[bool]:
    """The billed facts that are spend in the ledger, every surface's billed spend: LLM
    usage (attributed or not), and for a self-hosted or SageMaker workload the usage
    attributed to it whatever the service (its fleet's instance hours: the billed GPU
    reservation cost). Other cost a tag attributes to a workload (its S3, its EC2) is not
    LLM spend."""
    fleets = select(Workload.id).where(Workload.platform.in_(SELF_HOSTED_PLATFORMS))
    return and_(
        counted_usage(),
        or_(CostFact.is_llm.is_(True), CostFact.workload_id.in_(fleets.scalar_subquery())),
    )


def billed_adjustment() -> ColumnElement[bool]:
    """The SQL condition of an LLM adjustment (credit, refund, tax, ...) in the ledger."""
    return and_(
        CostFact.is_llm.is_(True),
        CostFact.charge_kind != USAGE,
        CostFact.superseded.is_(False),
    )


def billed_any() -> ColumnElement[bool]:
    """Any counted billed fact of the ledger (usage or adjustment, LLM or not): which days a
    source has billed."""
    return CostFact.superseded.is_(False)


def _rank(column: ColumnElement[str] | InstrumentedAttribute[str]) -> ColumnElement[int]:
    return case(
        *((column == name, literal(rank)) for name, rank in SOURCE_RANK.items()),
        else_=literal(OTHER_RANK),
    )


def settle(session: Session, start: date, end: date) -> None:
    """Mark, for every (account, day) in [start, end], the facts of every source but one as
    superseded (see the module docstring for the precedence)."""
    other = aliased(CostFact)
    mine, theirs = _rank(CostFact.source), _rank(other.source)
    beaten = exists(
        select(literal(1)).where(
            other.day == CostFact.day,
            other.account.is_not_distinct_from(CostFact.account),
            other.source != CostFact.source,
            (theirs < mine)
            | (
                (theirs == mine)
                & (
                    (other.collected_at > CostFact.collected_at)
                    | (
                        (other.collected_at == CostFact.collected_at)
                        & (other.source < CostFact.source)
                    )
                )
            ),
        )
    )
    session.execute(
        update(CostFact)
        .where(CostFact.day >= start, CostFact.day <= end)
        .values(superseded=beaten)
        .execution_options(synchronize_session=False)
    )


def stored_currency(session: Session) -> str | None:
    """The currency of the billed facts already stored (None: nothing billed yet)."""
    return session.scalar(select(CostFact.currency).limit(1))


def check_currency(session: Session, currency: str, what: str) -> None:
    """Refuse billing in another currency than the one already stored."""
    stored = stored_currency(session)
    if stored is not None and currency.upper() != stored.upper():
        raise BadInput(
            f"{what} is billed in {currency}, but the billing already stored is in {stored}: "
            "an organisation's spend is kept in one currency. Export the bill in "
            f"{stored}, or start a separate database for the {currency} billing account."
        )


__all__ = [
    "ADJUSTMENT_KINDS",
    "CE_USAGE_RECORD_TYPES",
    "CHARGE_KINDS",
    "MAX_AMOUNT",
    "SOURCE_RANK",
    "USAGE",
    "billed_adjustment",
    "billed_any",
    "billed_usage",
    "charge_kind",
    "check_amount",
    "check_currency",
    "counted_usage",
    "is_correction",
    "ledger_billed",
    "settle",
    "stored_currency",
]
