"""Finding 8: a self-hosted trip changes an SSM switch, and the GPUs keep billing. The card
says so; an opt-in `autoscaling_group` is scaled to zero on Trip and restored exactly on
Reset (only while it is still at the breaker's zero)."""

from __future__ import annotations

import json

import boto3
import pytest

from llmgov.bot.blocks.breaker import breaker_message
from llmgov.guardrails import actions
from llmgov.guardrails.actions import Result
from llmgov.guardrails.card import load_card
from tests.guardrails.conftest import (
    ADMINS,
    NOW,
    OWNER,
    PARAMETER,
    REGION,
    SELF_HOSTED,
    approved_reset,
    build_registry,
    parameter_value,
)

GROUP = "support-llama-gpus"


def autoscaling():
    return boto3.client("autoscaling", region_name=REGION)


def sizes() -> tuple[int, int, int]:
    (group,) = autoscaling().describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])[
        "AutoScalingGroups"
    ]
    return group["MinSize"], group["DesiredCapacity"], group["MaxSize"]


@pytest.fixture
def with_group(session, aws):
    autoscaling().create_launch_configuration(
        LaunchConfigurationName="gpu", ImageId="ami-12345678", InstanceType="g4dn.xlarge"
    )
    autoscaling().create_auto_scaling_group(
        AutoScalingGroupName=GROUP,
        LaunchConfigurationName="gpu",
        MinSize=1,
        DesiredCapacity=2,
        MaxSize=4,
        AvailabilityZones=[f"{REGION}a"],
    )
    boto3.client("ssm", region_name=REGION).put_parameter(Name=PARAMETER, Value="on", Type="String")
    build_registry(
        session,
        self_hosted_breaker={
            "enabled": True,
            "ssm_parameter": PARAMETER,
            "region": REGION,
            "autoscaling_group": GROUP,
        },
    )


def trip(session_factory):
    return actions.trip(session_factory, SELF_HOSTED, actor=OWNER, admins=ADMINS, now=NOW)


def test_the_card_of_a_switch_only_breaker_says_the_gpus_keep_billing(
    session, session_factory, registry
):
    text = json.dumps(breaker_message(load_card(session_factory, SELF_HOSTED, NOW)).to_dict())
    assert "GPU instances not scaled to zero" in text
    assert "stops serving, not the instances" in text


def test_trip_scales_the_group_to_zero_and_reset_restores_it_exactly(session_factory, with_group):
    outcome = trip(session_factory)
    assert outcome.result is Result.APPLIED, outcome.message
    assert sizes() == (0, 0, 0)
    assert parameter_value() == "off"
    assert "reservations and Savings Plans keep billing" in outcome.message

    assert approved_reset(session_factory, SELF_HOSTED).ok
    assert sizes() == (1, 2, 4)
    assert parameter_value() == "on"


def test_a_group_resized_by_someone_while_tripped_is_left_alone(session_factory, with_group):
    assert trip(session_factory).ok
    autoscaling().update_auto_scaling_group(
        AutoScalingGroupName=GROUP, MinSize=1, DesiredCapacity=1, MaxSize=1
    )
    outcome = approved_reset(session_factory, SELF_HOSTED)
    assert outcome.ok and "left the Auto Scaling group" in outcome.message
    assert sizes() == (1, 1, 1)


def test_an_unknown_group_is_refused_before_anything_changes(session, session_factory, aws):
    boto3.client("ssm", region_name=REGION).put_parameter(Name=PARAMETER, Value="on", Type="String")
    build_registry(
        session,
        self_hosted_breaker={
            "enabled": True,
            "ssm_parameter": PARAMETER,
            "region": REGION,
            "autoscaling_group": "no-such-group",
        },
    )
    outcome = trip(session_factory)
    assert outcome.result is Result.FAILED and "no Auto Scaling group" in outcome.message
    assert parameter_value() == "on"
