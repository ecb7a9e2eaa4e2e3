"""The breaker policy of one workload, read from `Workload.breaker` (the registry's `breaker:`).

```yaml
breaker:
  enabled: false                  # dry-run until true: record what Trip would do, touch nothing
  projected_over_budget_pct: 150  # fire when the month-end projection passes 150% of budget
  retry_storm_minutes: 30         # fire when a retry storm has lasted more than 30 minutes
  principal: "arn:aws:iam::111122223333:role/search-summarizer"   # Bedrock: who gets the deny
  inference_profile: "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1"
  ssm_parameter: /llmgov/support-llama/enabled                     # self-hosted: the switch
  ssm_off_value: "off"
  region: us-east-1               # for the SSM parameter (default: the AWS_REGION in use)
  account: "111122223333"         # holding the SSM parameter (default: the current credentials)
```

`evaluate()` decides whether the breaker fires, from the findings the governance checks
produced (`budget_projected_overrun`, `retry_storm`), so the numbers have one source of truth.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from llmgov.models.errors import BadInput

STATE_KEY = "state"  # Workload.breaker["state"] holds the breaker state (guardrails.state)
POLICY_KEYS = frozenset(
    {
        "enabled",
        "projected_over_budget_pct",
        "retry_storm_minutes",
        "principal",
        "inference_profile",
        "ssm_parameter",
        "ssm_off_value",
        "region",
        "account",
        "service_roles",
        "mechanism",
        "autoscaling_group",
    }
)
MECHANISMS = ("managed", "inline")  # managed: attach a pre-created policy (default)
DEFAULT_PROJECTED_OVER_BUDGET_PCT = 150.0
DEFAULT_RETRY_STORM_MINUTES = 30.0
DEFAULT_SSM_OFF_VALUE = "off"

# arn:aws:iam::111122223333:role/path/name, :user/name, or the STS form CUR reports
# (line_item_iam_principal): arn:aws:sts::111122223333:assumed-role/name/session
PRINCIPAL_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):(?:iam::(?P<account>\d{12}):(?P<kind>role|user)/(?P<path>(?:[\w+=,.@-]+/)*)(?P<name>[\w+=,.@-]{1,128})"
    r"|sts::(?P<sts_account>\d{12}):assumed-role/(?P<role>[\w+=,.@-]{1,64})/[\w+=,.@-]+)$"
)
INFERENCE_PROFILE_ARN = re.compile(
    r"^arn:aws[a-z-]*:bedrock:[a-z0-9-]+:\d{12}:application-inference-profile/[a-zA-Z0-9]+$"
)
# SSM parameter names: letters, digits and .-_/ ; a hierarchy starts with "/" (max 2048).
SSM_NAME = re.compile(r"^/?[a-zA-Z0-9_.\-]+(?:/[a-zA-Z0-9_.\-]+)*$")
REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d$")

EXAMPLE = (
    "for example `breaker: {enabled: false, projected_over_budget_pct: 150, "
    'principal: "arn:aws:iam::111122223333:role/my-app"}`'
)


@dataclass(frozen=True)
class Principal:
    """The IAM role or user the deny policy is attached to."""

    arn: str
    account: str
    kind: str  # "role" | "user"
    name: str


@dataclass(frozen=True)
class BreakerPolicy:
    enabled: bool = False
    projected_over_budget_pct: float | None = DEFAULT_PROJECTED_OVER_BUDGET_PCT
    retry_storm_minutes: float | None = DEFAULT_RETRY_STORM_MINUTES
    principal: Principal | None = None
    inference_profile: str | None = None
    ssm_parameter: str | None = None
    ssm_off_value: str = DEFAULT_SSM_OFF_VALUE
    region: str | None = None
    account: str | None = None  # for the SSM parameter; IAM uses the principal's account
    # the roles Bedrock assumes for the workload's agents, flows and batch jobs
    service_roles: tuple[Principal, ...] = ()
    # "managed": attach the customer-managed deny policy `llmgov breaker setup` created;
    # "inline": write an inline policy (legacy; needs iam:PutRolePolicy, see docs/guardrails.md)
    mechanism: str = "managed"
    # self-hosted, opt-in: scale this Auto Scaling group to zero on Trip, restore it on Reset
    autoscaling_group: str | None = None

    @property
    def dry_run(self) -> bool:
        return not self.enabled

    @property
    def has_target(self) -> bool:
        return (
            self.principal is not None
            or self.ssm_parameter is not None
            or self.autoscaling_group is not None
        )


def parse_principal(arn: str) -> Principal:
    match = PRINCIPAL_ARN.match(arn.strip())
    if not match:
        raise BadInput(
            f"{arn!r} is not an IAM role or user ARN; write it like "
            "arn:aws:iam::111122223333:role/my-app (or :user/my-user)"
        )
    if match.group("role"):  # an assumed-role session: the deny goes on the role
        account, name = match.group("sts_account"), match.group("role")
        arn = f"arn:{match.group('partition')}:iam::{account}:role/{name}"
        principal = Principal(arn, account, "role", name)
    else:
        principal = Principal(
            arn.strip(), match.group("account"), match.group("kind"), match.group("name")
        )
    problem = unusable_principal(principal, match.group("path") or "")
    if problem:
        raise BadInput(problem)
    return principal


# Principals AWS will not let the breaker change, and what works instead. One rule, used by
# the registry import (through parse_policy) and by every trip.
SSO_RESERVED_PREFIX = "AWSReservedSSO_"
SERVICE_LINKED_PATH = "aws-service-role/"
API_KEY_USER_PREFIX = "BedrockAPIKey"


def unusable_principal(principal: Principal, path: str = "") -> str | None:
    """Why the breaker cannot act on `principal` (None: it can)."""
    if principal.kind == "role" and principal.name.startswith(SSO_RESERVED_PREFIX):
        return (
            f"{principal.arn} is an IAM Identity Center (SSO) role: AWS refuses changes to "
            "AWSReservedSSO_* roles outside Identity Center, so a deny cannot be put on it. "
            "Instead, a person edits the permission set (add a deny on bedrock:*) or applies "
            "the break-glass SCP in docs/guardrails.md; or run the workload under a role of "
            "its own and name that role here"
        )
    if principal.kind == "role" and (
        path.startswith(SERVICE_LINKED_PATH) or principal.name.startswith("AWSServiceRoleFor")
    ):
        return (
            f"{principal.arn} is a service-linked role: AWS does not allow policies to be "
            "attached to it. Name the role of the workload that calls Bedrock (or the "
            "service role of its agent, flow or batch job), or use the break-glass SCP in "
            "docs/guardrails.md"
        )
    if principal.kind == "user" and principal.name.startswith(API_KEY_USER_PREFIX):
        return (
            f"{principal.arn} is the IAM user behind a Bedrock API key. Deactivate the key "
            "instead (aws iam update-service-specific-credential --status Inactive, done by a "
            "person), or apply the break-glass SCP in docs/guardrails.md that denies "
            "bedrock:CallWithBearerToken; the breaker does not manage API-key users"
        )
    return None


PRINCIPAL_KEYS = (
    "principal",
    "service_roles",
)  # the keys of a breaker entry that name IAM principals


def principal_problems(raw: Mapping[str, Any]) -> list[str]:
    """What is wrong with the principals named in a `breaker:` entry (for the registry import,
    which reports every problem of the file at once)."""
    problems = []
    for key in PRINCIPAL_KEYS:
        values = raw.get(key)
        for value in values if isinstance(values, list) else [values]:
            if value is None:
                continue
            try:
                parse_principal(_text(value, key))
            except BadInput as error:
                problems.append(f"{key}: {error}")
    return problems


def principal_arns(policy: BreakerPolicy) -> set[str]:
    """The IAM principals a trip of this policy denies."""
    found = {policy.principal.arn} if policy.principal else set()
    return found | {role.arn for role in policy.service_roles}


def shared_principals(
    entries: Iterable[tuple[str, Mapping[str, Any] | None]],
) -> dict[str, list[str]]:
    """Principal ARN -> the workloads (slugs, sorted) whose breakers deny it, for those
    named by more than one: a trip of any of them stops them all."""
    users: dict[str, set[str]] = {}
    for slug, raw in entries:
        try:
            policy = parse_policy(raw)
        except BadInput:
            continue
        if policy is None:
            continue
        for arn in principal_arns(policy):
            users.setdefault(arn, set()).add(slug)
    return {arn: sorted(slugs) for arn, slugs in sorted(users.items()) if len(slugs) > 1}


def shared_principal_notes(entries: Iterable[tuple[str, Mapping[str, Any] | None]]) -> list[str]:
    return [
        f"the breakers of {', '.join(slugs)} all deny {arn}: tripping any of them stops "
        "them all (the card says so). Give each workload a role of its own to stop one alone."
        for arn, slugs in shared_principals(entries).items()
    ]


def parse_policy(raw: Mapping[str, Any] | None, *, where: str = "breaker") -> BreakerPolicy | None:
    """The policy in `raw` (a workload's `breaker` dict), or None when no breaker is configured.

    `where` names the entry in error messages (e.g. "workloads[2] (search-summaries).breaker").
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise BadInput(f"{where} must be a mapping, {EXAMPLE}")
    settings = {key: value for key, value in raw.items() if key != STATE_KEY}
    if not settings:
        return None
    unknown = sorted(set(settings) - POLICY_KEYS)
    if unknown:
        raise BadInput(
            f"{where}: unknown key(s) {', '.join(unknown)}; "
            f"known keys are {', '.join(sorted(POLICY_KEYS))}"
        )

    enabled = settings.get("enabled", False)
    if not isinstance(enabled, bool):
        raise BadInput(f"{where}.enabled must be true or false, not {enabled!r}")

    principal = None
    if settings.get("principal") is not None:
        try:
            principal = parse_principal(_text(settings["principal"], f"{where}.principal"))
        except BadInput as error:
            raise BadInput(f"{where}.principal: {error}") from None

    profile = settings.get("inference_profile")
    if profile is not None:
        profile = _text(profile, f"{where}.inference_profile")
        if not INFERENCE_PROFILE_ARN.match(profile):
            raise BadInput(
                f"{where}.inference_profile: {profile!r} is not an application inference "
                "profile ARN; write it like "
                "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3"
            )
        if principal is None:
            raise BadInput(
                f"{where}.inference_profile needs {where}.principal: the deny on the profile is "
                "attached to the IAM role or user that calls Bedrock through it"
            )

    service_roles = _service_roles(settings.get("service_roles"), f"{where}.service_roles")
    if service_roles and principal is None:
        raise BadInput(
            f"{where}.service_roles needs {where}.principal: the role or user that calls "
            "Bedrock (the service roles are denied with it)"
        )

    mechanism = settings.get("mechanism", "managed")
    if mechanism not in MECHANISMS:
        raise BadInput(
            f"{where}.mechanism must be one of {', '.join(MECHANISMS)}, not {mechanism!r}"
        )

    parameter = settings.get("ssm_parameter")
    if parameter is not None:
        parameter = _text(parameter, f"{where}.ssm_parameter")
        if len(parameter) > 2048 or not SSM_NAME.match(parameter):
            raise BadInput(
                f"{where}.ssm_parameter: {parameter!r} is not an SSM parameter name; "
                "write it like /llmgov/support-llama/enabled"
            )

    asg = settings.get("autoscaling_group")
    if asg is not None:
        asg = _text(asg, f"{where}.autoscaling_group")
        if len(asg) > 255:
            raise BadInput(f"{where}.autoscaling_group: {asg[:40]!r}... is longer than 255")

    off_value = _text(
        settings.get("ssm_off_value", DEFAULT_SSM_OFF_VALUE), f"{where}.ssm_off_value"
    )
    region = settings.get("region")
    if region is not None and not REGION.match(_text(region, f"{where}.region")):
        raise BadInput(f"{where}.region: {region!r} is not an AWS region like us-east-1")

    account = settings.get("account")
    if account is not None:
        account = str(account).strip()
        if not re.fullmatch(r"\d{12}", account):
            raise BadInput(f"{where}.account: {account!r} is not a 12-digit AWS account id")

    policy = BreakerPolicy(
        enabled=enabled,
        projected_over_budget_pct=_threshold(settings, "projected_over_budget_pct", where),
        retry_storm_minutes=_threshold(settings, "retry_storm_minutes", where),
        principal=principal,
        inference_profile=profile,
        ssm_parameter=parameter,
        ssm_off_value=off_value,
        region=region,
        account=account,
        service_roles=service_roles,
        mechanism=mechanism,
        autoscaling_group=asg,
    )
    if policy.enabled and not policy.has_target:
        raise BadInput(
            f"{where}.enabled is true but nothing can be switched off: set {where}.principal "
            f"(Bedrock) or {where}.ssm_parameter (self-hosted), {EXAMPLE}"
        )
    return policy


def _service_roles(value: Any, where: str) -> tuple[Principal, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadInput(
            f"{where} must be a list of IAM role ARNs, like "
            '["arn:aws:iam::111122223333:role/service-role/AmazonBedrockExecutionRoleForAgents_x"]'
        )
    roles = []
    for index, item in enumerate(value):
        try:
            role = parse_principal(_text(item, f"{where}[{index}]"))
        except BadInput as error:
            raise BadInput(f"{where}[{index}]: {error}") from None
        if role.kind != "role":
            raise BadInput(f"{where}[{index}]: {role.arn} is a user; service roles are roles")
        roles.append(role)
    return tuple(roles)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{where} must be a non-empty string, not {value!r}")
    return value.strip()


def _threshold(settings: Mapping[str, Any], key: str, where: str) -> float | None:
    defaults = {
        "projected_over_budget_pct": DEFAULT_PROJECTED_OVER_BUDGET_PCT,
        "retry_storm_minutes": DEFAULT_RETRY_STORM_MINUTES,
    }
    if key not in settings:
        return defaults[key]
    value = settings[key]
    if value is None:  # explicitly off: this trigger never fires
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BadInput(
            f"{where}.{key} must be a positive number (or null to turn it off), not {value!r}"
        )
    return float(value)


# --- when the breaker fires -------------------------------------------------------------


class FindingLike(Protocol):
    kind: str
    workload: str | None
    details: dict[str, Any]
    fingerprint: str


@dataclass(frozen=True)
class Trigger:
    """One reason the breaker fires, with the finding it came from."""

    kind: str  # "projected_over_budget" | "retry_storm"
    fingerprint: str  # of the governance finding
    value: float  # percent of budget, or minutes
    threshold: float
    summary: str  # one line a person can read

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "fingerprint": self.fingerprint,
            "value": round(self.value, 2),
            "threshold": self.threshold,
            "summary": self.summary,
        }


def evaluate(
    policy: BreakerPolicy, findings: Iterable[FindingLike], workload: str
) -> list[Trigger]:
    """The triggers among `findings` for `workload` that cross this policy's thresholds.

    Reads `budget_projected_overrun` details (`projected_month_end` / `budget`, or
    `projected_pct_of_budget`) and `retry_storm` details (`hours`, or `duration_minutes`).
    """
    triggers: list[Trigger] = []
    for finding in findings:
        if finding.workload != workload:
            continue
        details = finding.details or {}
        if finding.kind == "budget_projected_overrun" and policy.projected_over_budget_pct:
            pct = projected_pct_of_budget(details)
            if pct is not None and pct > policy.projected_over_budget_pct:
                triggers.append(
                    Trigger(
                        "projected_over_budget",
                        finding.fingerprint,
                        pct,
                        policy.projected_over_budget_pct,
                        f"Month-end projection is {pct:.0f}% of budget "
                        f"(the breaker fires above {policy.projected_over_budget_pct:g}%)",
                    )
                )
        elif finding.kind == "retry_storm" and policy.retry_storm_minutes:
            minutes = storm_minutes(details)
            if minutes is not None and minutes > policy.retry_storm_minutes:
                triggers.append(
                    Trigger(
                        "retry_storm",
                        finding.fingerprint,
                        minutes,
                        policy.retry_storm_minutes,
                        f"A retry storm has lasted {minutes:.0f} minutes "
                        f"(the breaker fires after {policy.retry_storm_minutes:g})",
                    )
                )
    return triggers


def projected_pct_of_budget(details: Mapping[str, Any]) -> float | None:
    """Projected month-end as a percentage of the budget, from a finding's details."""
    direct = _number(details.get("projected_pct_of_budget"))
    if direct is not None:
        return direct
    projected = details.get("projected_month_end")
    if isinstance(projected, Mapping):  # {point|expected, low, high}: use the central value
        projected = projected.get("point", projected.get("expected"))
    projected_value = _number(projected)
    budget = _number(details.get("budget"))
    if projected_value is None or not budget or budget <= 0:
        return None
    return projected_value / budget * 100.0


def storm_minutes(details: Mapping[str, Any]) -> float | None:
    """How long a retry storm has lasted, from a finding's details.

    The checks detect storms on hourly buckets and report `hours`, the unbroken run of storm
    hours: each counts as 60 minutes. A finer source may give `duration_minutes` instead.
    """
    minutes = _number(details.get("duration_minutes"))
    if minutes is not None:
        return minutes
    hours = _number(details.get("hours"))
    return hours * 60.0 if hours is not None else None


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None
    return number if number == number else None  # NaN is no number


__all__ = [
    "POLICY_KEYS",
    "STATE_KEY",
    "BreakerPolicy",
    "Principal",
    "Trigger",
    "evaluate",
    "parse_policy",
    "parse_principal",
    "principal_arns",
    "projected_pct_of_budget",
    "shared_principal_notes",
    "shared_principals",
    "storm_minutes",
]
