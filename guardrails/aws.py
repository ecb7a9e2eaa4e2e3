"""What Trip does in AWS, and how Reset undoes it.

- Bedrock: an inline IAM policy `llmgov-breaker-<slug>` on the workload's role or user that
  denies `bedrock:InvokeModel*` (on `*`, or only on its application inference profile), as
  AWS Budgets' `APPLY_IAM_POLICY` action does. An explicit Deny beats every Allow. Converse
  and ConverseStream are authorised by `bedrock:InvokeModel` and
  `bedrock:InvokeModelWithResponseStream`, so the wildcard stops them too (there is no
  `bedrock:Converse*` IAM action; IAM Access Analyzer would flag one as invalid).
- Self-hosted: an SSM String parameter the application reads, set to the off value.
  Reset restores the value it had before the trip, or deletes the parameter if it had none.

Actions are plain JSON dicts, kept in the breaker state, so Reset undoes exactly what Trip
did even if the registry changed in between. A trip of several actions is all or nothing:
when one fails, the ones already applied are undone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.orm import Session

from llmgov.aws.clients import (
    ACCESS_DENIED,
    BAD_CREDENTIALS,
    AwsAccount,
    AwsClients,
    describe_aws_error,
    load_aws_settings,
    parse_aws_settings,
)
from llmgov.governance.breaker_policy import BreakerPolicy
from llmgov.models.errors import SourceError

POLICY_NAME_PREFIX = "llmgov-breaker-"
# Every Bedrock action that runs (and bills) inference, by the caller or on its behalf:
DENIED_ACTIONS = (
    "bedrock:InvokeModel*",  # InvokeModel, ...WithResponseStream, Converse(Stream), StartAsyncInvoke
    "bedrock:CreateModelInvocationJob",  # batch inference
    "bedrock:InvokeAgent",
    "bedrock:InvokeInlineAgent",
    "bedrock:InvokeFlow",
    "bedrock:RetrieveAndGenerate",  # knowledge-base generation
    "bedrock:RetrieveAndGenerateStream",
    "bedrock:Rerank",
    "bedrock:ApplyGuardrail",
    "bedrock:CallWithBearerToken",  # Bedrock API keys
    "bedrock-mantle:CreateInference",  # the OpenAI-compatible endpoint
    "bedrock-mantle:CallWithBearerToken",
)
# The concrete actions the confirmation checks the deny against (guardrails.confirm).
PROBED_ACTIONS = (
    "bedrock:InvokeModel",
    "bedrock:InvokeModelWithResponseStream",
    "bedrock:CreateModelInvocationJob",
    "bedrock:InvokeAgent",
    "bedrock:InvokeInlineAgent",
    "bedrock:InvokeFlow",
    "bedrock:RetrieveAndGenerate",
    "bedrock:RetrieveAndGenerateStream",
    "bedrock:Rerank",
    "bedrock:ApplyGuardrail",
    "bedrock:CallWithBearerToken",
    "bedrock-mantle:CreateInference",
    "bedrock-mantle:CallWithBearerToken",
)
PROFILE_PROBED_ACTIONS = (
    "bedrock:InvokeModel",
    "bedrock:InvokeModelWithResponseStream",
    "bedrock:CreateModelInvocationJob",
)
# Scoped to one application inference profile, only the calls through it can be told apart.
PROFILE_DENIED_ACTIONS = ("bedrock:InvokeModel*", "bedrock:CreateModelInvocationJob")
IAM_TYPES = ("iam_attach", "iam_deny")  # managed (default) and inline (legacy) denies
BATCH_ACTIVE_STATUSES = ("Submitted", "Validating", "Scheduled", "InProgress")
# What a trip cannot stop: it bills by the hour whatever the calls (shown on every card).
KEEPS_BILLING = (
    "Provisioned Throughput (billed per model unit per hour until deleted)",
    "Marketplace model endpoints (SageMaker instances billed per hour until deleted)",
    "GPU instances not scaled to zero, reservations, Capacity Blocks and Savings Plans "
    "(an SSM switch stops serving, not the instances)",
)


class ClientFactory(Protocol):
    """Returns a boto3 client for `service`, in `account` (None: the current credentials)."""

    def __call__(self, service: str, *, account: str | None, region: str | None) -> Any: ...


class _ActorClients(AwsClients):
    """AwsClients whose assumed-role sessions carry the Slack user who acted, as the role
    session name and the SourceIdentity, so CloudTrail shows who tripped or reset."""

    def __init__(self, settings: Any, actor: str) -> None:
        super().__init__(settings)
        self.actor = re.sub(r"[^\w+=,.@-]", "-", actor)[:40] or "unknown"

    def session(self, account: AwsAccount) -> Any:
        if account.role_arn is None or account in self._sessions:
            return super().session(account)
        sts = self.base_session().client("sts", region_name=self._sts_region(), config=self.config)
        arguments: dict[str, Any] = {
            "RoleArn": account.role_arn,
            "RoleSessionName": f"llmgov-breaker-{self.actor}"[:64],
            "SourceIdentity": self.actor,  # the role's trust policy must allow sts:SetSourceIdentity
            "DurationSeconds": 900,
        }
        if account.external_id:
            arguments["ExternalId"] = account.external_id
        credentials = sts.assume_role(**arguments)["Credentials"]
        self._sessions[account] = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        return self._sessions[account]


def registry_clients(session: Session, actor: str | None = None) -> ClientFactory:
    """Clients as the collectors make them: the registry's `sources.aws` accounts, assuming
    each account's `role_arn` (an account not listed there uses the current credentials).
    With `actor` (a Slack user id), the assumed-role session is named after them.
    boto3 honours AWS_ENDPOINT_URL, so a moto server can stand in for AWS."""
    settings = load_aws_settings(session) or parse_aws_settings({})
    clients = _ActorClients(settings, actor) if actor else AwsClients(settings)
    accounts = {account.id: account for account in settings.accounts if account.id}

    def factory(service: str, *, account: str | None, region: str | None) -> Any:
        target = accounts.get(account) if account else None
        return clients.client(service, target or AwsAccount(), region or settings.regions[0])

    return factory


class BreakerActionError(SourceError):
    """AWS refused or failed an action; the message says what, why and what to do."""


def policy_name(slug: str) -> str:
    return f"{POLICY_NAME_PREFIX}{slug}"[:128]


# Managed deny policies live under this IAM path, so the bot's attach permission can be
# limited to them with an `iam:PolicyARN` condition (docs/iam-breaker-policy.json).
POLICY_PATH = "/llmgov-breaker/"


def managed_policy_arn(partition: str, account: str, slug: str) -> str:
    return f"arn:{partition}:iam::{account}:policy{POLICY_PATH}{policy_name(slug)}"


def deny_document(resource: str | None) -> dict[str, Any]:
    """The deny policy: every Bedrock inference path, or only calls through one profile."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LlmgovCostCircuitBreaker",
                "Effect": "Deny",
                "Action": list(PROFILE_DENIED_ACTIONS if resource else DENIED_ACTIONS),
                "Resource": resource or "*",
            }
        ],
    }


def plan_trip(slug: str, policy: BreakerPolicy) -> list[dict[str, Any]]:
    """The actions Trip takes for this policy, in order (empty: nothing configured).

    The deny goes on the principal and on each service role the registry names (the roles
    Bedrock assumes for the workload's agents, flows and batch jobs); then the batch jobs
    running under those roles are stopped."""
    plan: list[dict[str, Any]] = []
    roles = []
    for principal in ([policy.principal] if policy.principal else []) + list(policy.service_roles):
        roles.append(principal.arn)
        action = {
            "type": "iam_attach" if policy.mechanism == "managed" else "iam_deny",
            "account": principal.account,
            "principal_arn": principal.arn,
            "principal_kind": principal.kind,
            "principal_name": principal.name,
            "policy_name": policy_name(slug),
            "document": deny_document(policy.inference_profile),
        }
        if policy.mechanism == "managed":
            partition = principal.arn.split(":")[1]
            action["policy_arn"] = managed_policy_arn(partition, principal.account, slug)
        plan.append(action)
    if policy.principal is not None:
        plan.append(
            {
                "type": "batch_stop",
                "account": policy.principal.account,
                "region": policy.region,
                "role_arns": roles,
                "stopped": [],  # filled in when applied
            }
        )
    if policy.autoscaling_group is not None:
        plan.append(
            {
                "type": "asg_scale",
                "account": policy.account,
                "region": policy.region,
                "group": policy.autoscaling_group,
                "previous": None,  # {min, desired, max}, filled in by prepare
            }
        )
    if policy.ssm_parameter is not None:
        plan.append(
            {
                "type": "ssm_switch",
                "account": policy.account,
                "region": policy.region,
                "parameter": policy.ssm_parameter,
                "value": policy.ssm_off_value,
                "previous": None,  # filled in when applied
            }
        )
    return plan


def describe(action: dict[str, Any]) -> str:
    """One line saying what the action does, for messages and the audit trail."""
    if action["type"] in IAM_TYPES:
        resource = action["document"]["Statement"][0]["Resource"]
        scope = (
            "every Bedrock inference path (runtime and Converse, async and batch, agents, "
            "flows, knowledge bases, rerank, guardrails, bedrock-mantle, API keys)"
            if resource == "*"
            else f"model calls and batch jobs through the inference profile `{resource}` "
            "(other paths stay open)"
        )
        how = "managed policy" if action["type"] == "iam_attach" else "inline policy"
        return (
            f"deny {scope} to {action['principal_kind']} `{action['principal_name']}` in "
            f"account {action['account']} ({how} `{action['policy_name']}`)"
        )
    if action["type"] == "batch_stop":
        roles = ", ".join(f"`{arn.rsplit('/', 1)[-1]}`" for arn in action["role_arns"])
        stopped = action.get("stopped") or []
        done = f" ({len(stopped)} stopped)" if stopped else ""
        failed = f" (could not: {action['error']})" if action.get("error") else ""
        return f"stop the running Bedrock batch jobs of {roles}{done}{failed}"
    where = f" in {action['region']}" if action.get("region") else ""
    if action["type"] == "asg_scale":
        return (
            f"scale the Auto Scaling group `{action['group']}`{where} to zero instances "
            "(reservations and Savings Plans keep billing)"
        )
    return f"set the SSM parameter `{action['parameter']}`{where} to `{action['value']}`"


def describe_undo(action: dict[str, Any]) -> str:
    if action["type"] == "iam_attach":
        if action.get("preexisting"):
            return (
                f"leave the managed policy `{action['policy_name']}` attached to "
                f"`{action['principal_name']}` (it was attached before the trip)"
            )
        return (
            f"detach the managed policy `{action['policy_name']}` from "
            f"{action['principal_kind']} `{action['principal_name']}` in account {action['account']}"
        )
    if action["type"] == "iam_deny":
        return (
            f"remove the inline policy `{action['policy_name']}` from "
            f"{action['principal_kind']} `{action['principal_name']}` in account {action['account']}"
        )
    if action["type"] == "batch_stop":
        return "leave the stopped batch jobs stopped (submit them again if they are still needed)"
    if action["type"] == "asg_scale":
        sizes = action.get("previous") or {}
        return (
            f"restore the Auto Scaling group `{action['group']}` to min {sizes.get('min')}, "
            f"desired {sizes.get('desired')}, max {sizes.get('max')} (if it is still at zero)"
        )
    if action.get("previous") is not None:
        return (
            f"set the SSM parameter `{action['parameter']}` back to `{action['previous']}` "
            "(if it still holds the breaker's value)"
        )
    return (
        f"delete the SSM parameter `{action['parameter']}` (if it still holds the breaker's value)"
    )


def check_accounts(actions: list[dict[str, Any]], clients: ClientFactory) -> None:
    """Refuse (BreakerActionError) unless the credentials used for each action's account
    belong to that account (`sts:GetCallerIdentity`). Without this, an account missing from
    `sources.aws.accounts` would be reached with the bot's own credentials, and the deny would
    land on a same-named role in the bot's account."""
    seen: set[str] = set()
    for action in actions:
        account = action.get("account")
        if not account or account in seen:
            continue
        seen.add(account)
        what = f"check which AWS account the bot's credentials for account {account} reach"
        sts = _client(clients, "sts", action, what)
        identity = _call(what, sts.get_caller_identity)
        actual = (identity or {}).get("Account")
        if actual != account:
            raise BreakerActionError(
                f"Refused to {describe(action)}: the credentials the bot has for account "
                f"{account} belong to account {actual} ({(identity or {}).get('Arn')}). "
                f"Add account {account} under `sources.aws.accounts` in the registry, with a "
                "`role_arn` the bot can assume there, then try again. Nothing was changed."
            )


def prepare(plan: list[dict[str, Any]], clients: ClientFactory) -> list[dict[str, Any]]:
    """Read what each action would change, before anything is written: the account behind
    the credentials, a same-named policy that is not the breaker's (refused: never
    overwritten), and each SSM switch's current value (kept, for Reset and the reconciler).
    Returns the plan with the original values filled in."""
    check_accounts(plan, clients)
    prepared = []
    for action in plan:
        if action["type"] == "iam_deny":
            found = _read_inline_policy(action, clients, describe(action))
            if found is not None and not _same_document(found, action["document"]):
                raise BreakerActionError(
                    f"Refused to {describe(action)}: {action['principal_kind']} "
                    f"`{action['principal_name']}` already has an inline policy named "
                    f"`{action['policy_name']}` that the breaker did not write. Nothing was "
                    "changed; rename or remove that policy (after checking who wrote it), then "
                    "try again."
                )
            prepared.append(dict(action))
        elif action["type"] == "iam_attach":
            _check_managed_policy(action, clients)
            attached = _attached(action, clients, describe(action))
            prepared.append({**action, "preexisting": attached})
        elif action["type"] == "asg_scale":
            prepared.append({**action, "previous": _asg_sizes(action, clients)})
        elif action["type"] == "ssm_switch":
            ssm = _client(clients, "ssm", action, describe(action))
            previous = _current_ssm_value(ssm, action)
            prepared.append({**action, "previous": previous, "prepared": True})
        else:
            prepared.append(dict(action))
    return prepared


AfterEach = Callable[[int, dict[str, Any]], None]


def apply_all(
    plan: list[dict[str, Any]],
    clients: ClientFactory,
    *,
    applied: list[dict[str, Any]] | None = None,
    after_each: AfterEach | None = None,
) -> list[dict[str, Any]]:
    """Apply every action; on a failure undo the ones applied, then raise. Returns them applied.

    Nothing is written unless every action's account is the one the credentials reach.
    `applied` (when given) is filled as actions succeed, so a caller interrupted by anything
    (a signal, a bug) still knows what to undo."""
    check_accounts(plan, clients)
    applied = [] if applied is None else applied
    for index, action in enumerate(plan):
        try:
            applied.append(_apply(action, clients))
        except BreakerActionError as error:
            leftovers = undo_all(applied, clients, raise_on_error=False)
            if leftovers:
                raise BreakerActionError(
                    f"{error} The actions already taken could not all be undone; by hand: "
                    + "; ".join(leftovers)
                    + "."
                ) from error
            raise
        if after_each is not None:
            after_each(index, applied[-1])
    return applied


def undo_all(
    applied: list[dict[str, Any]],
    clients: ClientFactory,
    *,
    raise_on_error: bool = True,
    after_each: AfterEach | None = None,
) -> list[str]:
    """Undo actions in reverse order, each only where AWS still holds exactly what the
    breaker wrote. Returns what could not be undone (when not raising) and what was left
    alone because someone changed it."""
    failures: list[str] = []
    try:
        check_accounts(applied, clients)
    except BreakerActionError as error:
        if raise_on_error:
            raise
        return [f"{describe_undo(action)} ({error})" for action in applied]
    for index, action in enumerate(reversed(applied)):
        try:
            note = _undo(action, clients)
        except BreakerActionError as error:
            if raise_on_error:
                raise
            failures.append(f"{describe_undo(action)} ({error})")
            continue
        if note:
            failures.append(note)
        if after_each is not None:
            after_each(index, action)
    return failures


def in_force(action: dict[str, Any], clients: ClientFactory) -> bool | None:
    """Whether AWS holds exactly what `action` writes (None: something else is there)."""
    if action["type"] == "iam_attach":
        return _attached(action, clients, describe(action))
    if action["type"] == "iam_deny":
        found = _read_inline_policy(action, clients, describe(action))
        if found is None:
            return False
        return True if _same_document(found, action["document"]) else None
    if action["type"] == "asg_scale":
        return _asg_sizes(action, clients) == ZERO
    if action["type"] == "ssm_switch":
        ssm = _client(clients, "ssm", action, describe(action))
        current = _current_ssm_value(ssm, action)
        if current == action["value"]:
            return True
        return False if current == action.get("previous") else None
    return False  # stopping batch jobs leaves nothing in force


# ---- one action ------------------------------------------------------------------------


def _apply(action: dict[str, Any], clients: ClientFactory) -> dict[str, Any]:
    if action["type"] == "iam_attach":
        what = describe(action)
        iam = _client(clients, "iam", action, what)
        kind, name = action["principal_kind"], action["principal_name"]
        attach = iam.attach_role_policy if kind == "role" else iam.attach_user_policy
        _call(
            what,
            attach,
            **{"RoleName" if kind == "role" else "UserName": name},
            PolicyArn=action["policy_arn"],
        )
        return dict(action)
    if action["type"] == "iam_deny":
        what = describe(action)
        iam = _client(clients, "iam", action, what)
        found = _read_inline_policy(action, clients, what)
        if found is not None:
            if _same_document(found, action["document"]):
                return dict(action)  # already in force (an interrupted trip): nothing to write
            raise BreakerActionError(
                f"Refused to {what}: a different policy with that name appeared on "
                f"`{action['principal_name']}` meanwhile. It was left as it is."
            )
        kind, name = action["principal_kind"], action["principal_name"]
        put: Callable[..., Any] = iam.put_role_policy if kind == "role" else iam.put_user_policy
        _call(
            what,
            put,
            **{"RoleName" if kind == "role" else "UserName": name},
            PolicyName=action["policy_name"],
            PolicyDocument=json.dumps(action["document"]),
        )
        return dict(action)

    if action["type"] == "batch_stop":
        return _stop_batch_jobs(action, clients)
    if action["type"] == "asg_scale":
        previous = action.get("previous") or _asg_sizes(action, clients)
        _set_asg(action, clients, ZERO, describe(action))
        return {**action, "previous": previous}
    ssm = _client(clients, "ssm", action, describe(action))
    current = _current_ssm_value(ssm, action)
    previous = action.get("previous") if action.get("prepared") else current
    if current != previous and current != action["value"]:
        raise BreakerActionError(
            f"Refused to {describe(action)}: it changed from `{previous}` to `{current}` since "
            "the trip began; nothing was written. Try again."
        )
    _call(
        describe(action),
        ssm.put_parameter,
        Name=action["parameter"],
        Value=action["value"],
        Type="String",
        Overwrite=True,
        Description="Set by the llmgov cost circuit breaker; Reset in Slack restores it.",
    )
    return {**action, "previous": previous}


def _undo(action: dict[str, Any], clients: ClientFactory) -> str | None:
    """Undo one action; a note when it was left alone because it is no longer ours."""
    what = describe_undo(action)
    if action["type"] == "iam_attach":
        if action.get("preexisting"):
            return None  # attached before the trip, by someone else: not ours to detach
        iam = _client(clients, "iam", action, what)
        kind, name = action["principal_kind"], action["principal_name"]
        detach = iam.detach_role_policy if kind == "role" else iam.detach_user_policy
        _call(
            what,
            detach,
            ignore=("NoSuchEntity",),  # already detached: the goal is reached
            **{"RoleName" if kind == "role" else "UserName": name},
            PolicyArn=action["policy_arn"],
        )
        return None
    if action["type"] == "iam_deny":
        iam = _client(clients, "iam", action, what)
        found = _read_inline_policy(action, clients, what)
        if found is None:
            return None  # already removed by hand: the goal is reached
        if not _same_document(found, action["document"]):
            raise BreakerActionError(
                f"Refused to {what}: it was changed after the breaker wrote it (someone edited "
                "it), and the breaker removes only exactly what it wrote. Review the policy, "
                "remove it by hand if it should go, then Reset again."
            )
        kind, name = action["principal_kind"], action["principal_name"]
        delete = iam.delete_role_policy if kind == "role" else iam.delete_user_policy
        _call(
            what,
            delete,
            ignore=("NoSuchEntity",),
            **{"RoleName" if kind == "role" else "UserName": name},
            PolicyName=action["policy_name"],
        )
        return None
    if action["type"] == "batch_stop":
        return None  # a stopped job cannot be resumed
    if action["type"] == "asg_scale":
        current = _asg_sizes(action, clients)
        previous = action.get("previous")
        if current == previous or previous is None:
            return None
        if current != ZERO:
            return (
                f"left the Auto Scaling group `{action['group']}` as it is: it is now "
                f"{current}, not the breaker's zero, so someone else changed it"
            )
        _set_asg(action, clients, previous, what)
        return None
    ssm = _client(clients, "ssm", action, what)
    current = _current_ssm_value(ssm, action)
    if current != action["value"]:
        if current == action.get("previous"):
            return None  # already back as it was
        return (
            f"left the SSM parameter `{action['parameter']}` as it is: it is now "
            f"`{current}`, not the breaker's `{action['value']}`, so someone else changed it"
        )
    if action.get("previous") is not None:
        if action["previous"] != current:
            _call(
                what,
                ssm.put_parameter,
                Name=action["parameter"],
                Value=action["previous"],
                Type="String",
                Overwrite=True,
            )
    else:
        _call(what, ssm.delete_parameter, ignore=("ParameterNotFound",), Name=action["parameter"])
    return None


ZERO = {"min": 0, "desired": 0, "max": 0}


def _asg_sizes(action: dict[str, Any], clients: ClientFactory) -> dict[str, int]:
    what = describe(action)
    autoscaling = _client(clients, "autoscaling", action, what)
    found = _call(
        what, autoscaling.describe_auto_scaling_groups, AutoScalingGroupNames=[action["group"]]
    )["AutoScalingGroups"]
    if not found:
        raise BreakerActionError(
            f"Could not {what}: there is no Auto Scaling group named `{action['group']}` "
            "there. Check `autoscaling_group` in the registry. Nothing was changed."
        )
    group = found[0]
    return {"min": group["MinSize"], "desired": group["DesiredCapacity"], "max": group["MaxSize"]}


def _set_asg(
    action: dict[str, Any], clients: ClientFactory, sizes: dict[str, int], what: str
) -> None:
    autoscaling = _client(clients, "autoscaling", action, what)
    _call(
        what,
        autoscaling.update_auto_scaling_group,
        AutoScalingGroupName=action["group"],
        MinSize=sizes["min"],
        DesiredCapacity=sizes["desired"],
        MaxSize=sizes["max"],
    )


def _check_managed_policy(action: dict[str, Any], clients: ClientFactory) -> None:
    """The managed deny policy exists and says exactly what the breaker denies."""
    what = describe(action)
    document = managed_policy_document(action, clients, what)
    if document is None:
        raise BreakerActionError(
            f"Could not {what}: the managed policy `{action['policy_arn']}` does not exist. "
            "Run `llmgov breaker setup` (with credentials that may create IAM policies in "
            f"account {action['account']}), then try again. Nothing was changed."
        )
    if not _same_document(document, action["document"]):
        raise BreakerActionError(
            f"Refused to {what}: the managed policy `{action['policy_arn']}` no longer says "
            "what the breaker expects (it was edited, or the registry changed). Review it and "
            "run `llmgov breaker setup --update`, then try again. Nothing was changed."
        )


def managed_policy_document(action: dict[str, Any], clients: ClientFactory, what: str) -> Any:
    """The default version's document of the action's managed policy (None: no policy)."""
    iam = _client(clients, "iam", action, what)
    found = _call(what, iam.get_policy, ignore=("NoSuchEntity",), PolicyArn=action["policy_arn"])
    if found is None:
        return None
    version = _call(
        what,
        iam.get_policy_version,
        PolicyArn=action["policy_arn"],
        VersionId=found["Policy"]["DefaultVersionId"],
    )
    return _decoded(version["PolicyVersion"]["Document"])


def _attached(action: dict[str, Any], clients: ClientFactory, what: str) -> bool:
    iam = _client(clients, "iam", action, what)
    kind, name = action["principal_kind"], action["principal_name"]
    method = iam.list_attached_role_policies if kind == "role" else iam.list_attached_user_policies
    marker = None
    while True:
        page = _call(
            what,
            method,
            **{"RoleName" if kind == "role" else "UserName": name},
            PathPrefix=POLICY_PATH,
            **({"Marker": marker} if marker else {}),
        )
        if any(p["PolicyArn"] == action["policy_arn"] for p in page.get("AttachedPolicies", [])):
            return True
        if not page.get("IsTruncated"):
            return False
        marker = page.get("Marker")


def _decoded(document: Any) -> Any:
    if isinstance(document, str):  # IAM returns documents URL-encoded; boto3 usually decodes
        from urllib.parse import unquote

        return json.loads(unquote(document))
    return document


def _read_inline_policy(action: dict[str, Any], clients: ClientFactory, what: str) -> Any:
    iam = _client(clients, "iam", action, what)
    kind, name = action["principal_kind"], action["principal_name"]
    get = iam.get_role_policy if kind == "role" else iam.get_user_policy
    found = _call(
        what,
        get,
        ignore=("NoSuchEntity",),
        **{"RoleName" if kind == "role" else "UserName": name},
        PolicyName=action["policy_name"],
    )
    if found is None:
        return None
    return _decoded(found["PolicyDocument"])


def _same_document(found: Any, wrote: dict[str, Any]) -> bool:
    return json.dumps(found, sort_keys=True) == json.dumps(wrote, sort_keys=True)


def _stop_batch_jobs(action: dict[str, Any], clients: ClientFactory) -> dict[str, Any]:
    """Stop the workload's active batch inference jobs. A failure here does not undo the
    deny (that would let new spend in to save the old): it is recorded and shown."""
    what = describe(action)
    roles = set(action["role_arns"])
    stopped: list[str] = []
    try:
        bedrock = _client(clients, "bedrock", action, what)
        for status in BATCH_ACTIVE_STATUSES:
            token = None
            while True:
                page = _call(
                    what,
                    bedrock.list_model_invocation_jobs,
                    statusEquals=status,
                    **({"nextToken": token} if token else {}),
                )
                for job in page.get("invocationJobSummaries", []):
                    if job.get("roleArn") in roles:
                        _call(what, bedrock.stop_model_invocation_job, jobIdentifier=job["jobArn"])
                        stopped.append(job["jobArn"])
                token = page.get("nextToken")
                if not token:
                    break
    except BreakerActionError as error:
        return {**action, "stopped": stopped, "error": str(error)}
    return {**action, "stopped": stopped}


def _current_ssm_value(ssm: Any, action: dict[str, Any]) -> str | None:
    what = describe(action)
    found = _call(what, ssm.get_parameter, ignore=("ParameterNotFound",), Name=action["parameter"])
    if found is None:
        return None
    parameter = found["Parameter"]
    if parameter.get("Type") == "SecureString":
        raise BreakerActionError(
            f"Could not {what}: it is a SecureString. The breaker switch holds on/off, not a "
            "secret: make it a String parameter, then try again. Nothing was changed."
        )
    return parameter.get("Value")


def _client(clients: ClientFactory, service: str, action: dict[str, Any], what: str) -> Any:
    try:
        return clients(service, account=action.get("account"), region=action.get("region"))
    except (BotoCoreError, ClientError) as error:
        raise BreakerActionError(_explain(what, error)) from error


def _call(what: str, method: Callable[..., Any], *, ignore: tuple[str, ...] = (), **kwargs) -> Any:
    try:
        return method(**kwargs)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ignore:
            return None
        raise BreakerActionError(_explain(what, error)) from error
    except BotoCoreError as error:
        raise BreakerActionError(_explain(what, error)) from error


def _explain(what: str, error: Exception) -> str:
    if not isinstance(error, ClientError):  # no credentials, no region, no network...
        return describe_aws_error(error, what=f"Could not {what}")
    code = error.response.get("Error", {}).get("Code", "Error")
    detail = error.response.get("Error", {}).get("Message", "")
    reason = f"{code}: {detail}" if detail else code
    if code in ACCESS_DENIED:
        advice = (
            "Give the bot's role in that account the permissions in "
            "docs/iam-breaker-policy.json, then try again."
        )
    elif code in BAD_CREDENTIALS:
        advice = "The bot's AWS credentials are expired or invalid: refresh them, then try again."
    elif code in {"LimitExceeded", "LimitExceededException"}:
        advice = (
            "This is an IAM limit (inline policies: 2,048 characters per user, 10,240 per "
            "role; managed policies: 10 attached per role or user by default), so trying "
            "again will not help. Use the managed mechanism (`mechanism: managed`, the "
            "default, after `llmgov breaker setup`), or remove policies the principal no "
            "longer needs."
        )
    elif code in {"NoSuchEntity", "NoSuchEntityException"}:
        advice = "Check the breaker's `principal` in the registry names an existing role or user."
    else:
        advice = "Try again; if it keeps failing, check the breaker settings in the registry."
    return f"Could not {what}: AWS said {reason}. {advice}"


__all__ = [
    "DENIED_ACTIONS",
    "KEEPS_BILLING",
    "BreakerActionError",
    "ClientFactory",
    "apply_all",
    "check_accounts",
    "deny_document",
    "describe",
    "describe_undo",
    "in_force",
    "managed_policy_arn",
    "managed_policy_document",
    "plan_trip",
    "policy_name",
    "prepare",
    "registry_clients",
    "undo_all",
]
