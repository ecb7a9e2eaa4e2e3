"""Malformed registry files: each is rejected whole (exit 2), with a message naming the file,
the entry and the field, and nothing is written."""

from __future__ import annotations

import pytest

from llmgov.bot.cli import main
from llmgov.governance.registry_file import InvalidRegistry, parse_registry
from tests.registry.support import BASE_REGISTRY, import_text, snapshot

# A file with real changes (a new team, a new budget): if any of it were written despite
# the problem, the snapshot would differ.
CHANGED = BASE_REGISTRY.replace("budget: {monthly: 4000}", "budget: {monthly: 5000}").replace(
    "  - {slug: support, name: Support}\n",
    "  - {slug: support, name: Support}\n  - {slug: billing, name: Billing}\n",
)
assert CHANGED != BASE_REGISTRY


def _line(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


# (id, old, new, expected message lines); each case is CHANGED with `old` replaced by `new`
CASES = [
    (
        "unknown top-level key",
        "teams:\n",
        "workload:\n  - slug: x\nteams:\n",
        ["registry.yaml: workload: unknown top-level key (did you mean 'workloads'?)"],
    ),
    (
        "unknown field in an entry",
        "    feature: result-summaries\n",
        "    featur: result-summaries\n",
        [
            "registry.yaml: workloads[0] (search-summaries).featur: unknown field (did you mean 'feature'?)"
        ],
    ),
    (
        "missing slug",
        "  - slug: ticket-triage\n    platform: bedrock\n",
        "  - platform: bedrock\n",
        ["registry.yaml: workloads[2].slug: is required"],
    ),
    (
        "bad slug format",
        "slug: fraud-scoring",
        "slug: Fraud_Scoring",
        [
            "registry.yaml: workloads[3] (Fraud_Scoring).slug: 'Fraud_Scoring' is not a valid slug: "
            "use lowercase letters, digits and single hyphens"
        ],
    ),
    (
        "duplicate slug",
        "slug: fraud-scoring",
        "slug: ticket-triage",
        [
            "registry.yaml: workloads[3] (ticket-triage).slug: duplicate slug 'ticket-triage', "
            "already used by workloads[2] (ticket-triage)"
        ],
    ),
    (
        "duplicate team slug",
        "{slug: billing, name: Billing}",
        "{slug: search, name: Billing}",
        [
            "registry.yaml: teams[2] (search).slug: duplicate slug 'search', already used by teams[0] (search)"
        ],
    ),
    (
        "unknown team",
        "    team: support\n    match:\n      - {model_id",
        "    team: suport\n    match:\n      - {model_id",
        [
            "registry.yaml: workloads[2] (ticket-triage).team: unknown team 'suport' "
            "(did you mean 'support'?); add it under teams: or use one of: billing, search, support"
        ],
    ),
    (
        "unknown platform",
        "platform: sagemaker",
        "platform: sage-maker",
        [
            "registry.yaml: workloads[3] (fraud-scoring).platform: unknown platform 'sage-maker' "
            "(did you mean 'sagemaker'?); use one of: bedrock, self_hosted, sagemaker, other"
        ],
    ),
    (
        "unknown status",
        "status: experiment",
        "status: paused",
        [
            "registry.yaml: workloads[3] (fraud-scoring).status: unknown status 'paused'; "
            "use one of: active, experiment, discovered, retired"
        ],
    ),
    (
        "negative budget",
        "budget: {monthly: 250.5, currency: EUR}",
        "budget: {monthly: -5, currency: EUR}",
        [
            "registry.yaml: workloads[3] (fraud-scoring).budget.monthly: must be a positive "
            "amount, not -5; e.g. 4000"
        ],
    ),
    (
        "budget without an amount",
        "budget: {monthly: 250.5, currency: EUR}",
        "budget: {currency: EUR}",
        ["registry.yaml: workloads[3] (fraud-scoring).budget.monthly: is required"],
    ),
    (
        "bad currency",
        "currency: EUR}",
        "currency: euros}",
        [
            "registry.yaml: workloads[3] (fraud-scoring).budget.currency: must be a 3-letter ISO "
            "4217 currency code like USD or EUR, got 'euros'"
        ],
    ),
    (
        "rule of an unknown kind",
        "{endpoint: fraud-llama-endpoint}",
        "{endpoints: fraud-llama-endpoint}",
        [
            "registry.yaml: workloads[3] (fraud-scoring).match[0]: unknown rule kind 'endpoints' "
            "(did you mean 'endpoint'?)"
        ],
    ),
    (
        "rule with an empty value",
        "{instance: i-0abc1234def567890}",
        "{instance: ''}",
        [
            "registry.yaml: workloads[1] (support-llama).match[0]: the instance of a rule must be "
            "non-empty text, got ''"
        ],
    ),
    (
        "rule with two kinds",
        "{endpoint: fraud-llama-endpoint}",
        "{endpoint: fraud-llama-endpoint, host: gpu-1}",
        [
            "registry.yaml: workloads[3] (fraud-scoring).match[0]: a rule has exactly one kind, "
            "this one has endpoint and host"
        ],
    ),
    (
        "tag rule with two tags",
        "{tag: {llm-workload: search-summaries}}",
        "{tag: {llm-workload: search-summaries, env: prod}}",
        ["registry.yaml: workloads[0] (search-summaries).match[0]: a tag rule names one tag"],
    ),
    (
        "account that lost its quotes",
        'account: "111122223333", region',
        "account: 11112222333, region",
        [
            "registry.yaml: workloads[2] (ticket-triage).match[0]: account must be a 12-digit AWS "
            "account id in quotes, like '111122223333', got 11112222333"
        ],
    ),
    (
        "the same rule on two workloads",
        '{model_id: "meta.llama3-1-8b-instruct-v1:0", account: "111122223333", region: us-east-1}',
        "{instance: i-0abc1234def567890}",
        [
            "registry.yaml: workloads[2] (ticket-triage).match[0]: instance i-0abc1234def567890 "
            "(priority 1) is also a rule of workloads[1] (support-llama)"
        ],
    ),
    (
        "bad owner reference",
        "owner: bob@example.com",
        "owner: Bob",
        [
            "registry.yaml: workloads[1] (support-llama).owner: must be a Slack user id (like "
            "U0ANA0001) or an email (like ana@example.com), got 'Bob'"
        ],
    ),
    (
        "backup owner is the owner",
        "backup_owner: bo@example.com",
        "backup_owner: ana@example.com",
        [
            "registry.yaml: workloads[0] (search-summaries).backup_owner: ana@example.com is the "
            "same person as the owner (U0ANA0001)"
        ],
    ),
    (
        "person without slack_id or email",
        "{slack_id: U0BOB0002, email: bob@example.com, name: Bob Stone}",
        "{name: Bob Stone}",
        ["registry.yaml: people[1]: a person needs a slack_id (like U0ANA0001), an email, or both"],
    ),
    (
        "person with a bad email",
        "email: ana@example.com",
        "email: ana-at-example",
        [
            "registry.yaml: people[0] (U0ANA0001).email: must be an email like ana@example.com, "
            "got 'ana-at-example'"
        ],
    ),
    (
        "person with a bad Slack id",
        "slack_id: U0BOB0002",
        "slack_id: bob",
        [
            "registry.yaml: people[1] (bob).slack_id: must be a Slack user id like U0ANA0001, got 'bob'"
        ],
    ),
    (
        "bad gpu count",
        "count: 2}",
        "count: 0}",
        [
            "registry.yaml: workloads[1] (support-llama).gpu.count: must be a whole number of "
            "instances, at least 1, got 0"
        ],
    ),
    (
        "gpu without an instance type",
        "gpu: {instance_type: g6.12xlarge, count: 2}",
        "gpu: {count: 2}",
        ["registry.yaml: workloads[1] (support-llama).gpu.instance_type: is required"],
    ),
    (
        "wrong type: text for a flag",
        "critical_path: true",
        'critical_path: "yes"',
        [
            "registry.yaml: workloads[0] (search-summaries).critical_path: must be true or false, got 'yes'"
        ],
    ),
    (
        "wrong type: YAML boolean for text",
        "customer: all",
        "customer: no",
        [
            "registry.yaml: workloads[0] (search-summaries).customer: must be text, got false "
            "(YAML reads yes/no/on/off as true/false: quote it)"
        ],
    ),
    (
        "wrong type: a section that is not a list",
        "people:\n",
        "people: ana\nnot_people:\n",
        [
            "registry.yaml: people: must be a list of person entries (each line starting with '- '), got 'ana'",
            "registry.yaml: not_people: unknown top-level key (did you mean 'people'?)",
        ],
    ),
    (
        "wrong type: source settings",
        'prometheus: {url: "http://prometheus:9090"}',
        "prometheus: http://prometheus:9090",
        ["registry.yaml: sources.prometheus: must be a mapping, got 'http://prometheus:9090'"],
    ),
    (
        "unquoted date in a constraint",
        "latency_p95_ms: 800}",
        "latency_p95_ms: 800, reviewed: 2024-01-31}",
        [
            "registry.yaml: workloads[0] (search-summaries).constraints: 2024-01-31 at reviewed is "
            "a date; quote it to keep it as text"
        ],
    ),
    (
        "constraint of the wrong type",
        "fine_tuning: false",
        "fine_tuning: maybe",
        [
            "registry.yaml: workloads[0] (search-summaries).constraints.fine_tuning: must be true or false, got 'maybe'"
        ],
    ),
    (
        "unknown threshold",
        "    critical_path: true\n",
        "    critical_path: true\n    thresholds: {anomaly_zz: 3}\n",
        [
            "registry.yaml: workloads[0] (search-summaries).thresholds.anomaly_zz: unknown threshold 'anomaly_zz'"
        ],
    ),
    (
        "key written twice",
        "    owner: U0ANA0001\n",
        "    owner: U0ANA0001\n    owner: U0BOB0002\n",
        ["registry.yaml: the key 'owner' is written twice in the same mapping"],
    ),
    (
        "unsupported version",
        "organisation:\n",
        "version: 2\norganisation:\n",
        ["registry.yaml: version: unsupported version 2; this llmgov reads version 1"],
    ),
    (
        "version that is not a number",
        "organisation:\n",
        "version: true\norganisation:\n",
        ["registry.yaml: version: unsupported version true; this llmgov reads version 1"],
    ),
    (
        "a NUL character (PostgreSQL refuses it in text)",
        "    feature: result-summaries\n",
        '    feature: "result\\0summaries"\n',
        [
            "registry.yaml: workloads[0].feature: the text has a control character (U+0000) "
            "at character 7: remove it and try again."
        ],
    ),
    (
        "gpu on a bedrock workload",
        "    platform: bedrock\n    team: support\n",
        "    platform: bedrock\n    team: support\n    gpu: {instance_type: g6.xlarge, count: 1}\n",
        ["registry.yaml: workloads[2] (ticket-triage).gpu: a bedrock workload has no GPU fleet"],
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_malformed_file_is_rejected_whole(
    base, session_factory, write_file, capsys, old, new, expected
):
    assert old in CHANGED, old
    text = CHANGED.replace(old, new, 1)
    before = snapshot(session_factory)
    capsys.readouterr()

    status = main(["registry", "import", str(write_file(text))])

    err = capsys.readouterr().err
    assert status == 2
    assert "registry.yaml was rejected" in err and "nothing was written" in err
    for message in expected:
        assert message in err, f"{message!r} not in:\n{err}"
    assert snapshot(session_factory) == before


def test_the_message_names_file_entry_field_and_line(base, session_factory, write_file, capsys):
    text = CHANGED.replace("{monthly: 250.5, currency: EUR}", "{monthly: -5, currency: EUR}")
    line = _line(text, "{monthly: -5")

    assert main(["registry", "import", str(write_file(text))]) == 2

    err = capsys.readouterr().err
    assert (
        "  registry.yaml: workloads[3] (fraud-scoring).budget.monthly: must be a positive "
        f"amount, not -5; e.g. 4000 (leave it out for no budget) (line {line})\n"
    ) in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "teams:\n  - {slug: search, name: Search}\nworkloads:\n  - slug: a\n    budget: {monthly: 4000\n  - slug: b\n",
            "registry.yaml: invalid YAML at line 6, column 9: ",
        ),
        (
            "workloads:\n  - slug: a\n   name: broken indentation\n",
            "registry.yaml: invalid YAML at line 3, column",
        ),
        ("- search\n- support\n", "registry.yaml: the top level must be a mapping with the keys"),
        ("", "registry.yaml: the file is empty"),
        ("# only a comment\n", "registry.yaml: the file is empty"),
        ("--- {teams: []}\n--- {teams: []}\n", "registry.yaml: invalid YAML at line 2"),
    ],
    ids=[
        "unclosed flow mapping",
        "bad indentation",
        "not a mapping",
        "empty",
        "only comments",
        "two documents",
    ],
)
def test_unreadable_file_is_rejected(base, session_factory, write_file, capsys, text, expected):
    before = snapshot(session_factory)

    assert main(["registry", "import", str(write_file(text))]) == 2

    err = capsys.readouterr().err
    assert expected in err
    if "flow mapping" in text or "budget: {monthly: 4000\n" in text:
        # where the unclosed { began, not only where the parser noticed
        assert "(while parsing a flow mapping started at line 5, column 13)" in err
    assert snapshot(session_factory) == before


def test_every_problem_is_reported_at_once():
    text = (
        CHANGED.replace("status: experiment", "status: paused")
        .replace("owner: bob@example.com", "owner: Bob")
        .replace("count: 2}", "count: two}")
    )
    with pytest.raises(InvalidRegistry) as caught:
        parse_registry(text, "registry.yaml")

    paths = [problem.path for problem in caught.value.problems]
    assert paths == [
        "workloads[1] (support-llama).owner",
        "workloads[1] (support-llama).gpu.count",
        "workloads[3] (fraud-scoring).status",
    ]
    assert "(3 problems)" in str(caught.value)
    assert caught.value.problems[1].line == _line(text, "gpu: {instance_type")


def test_problems_found_against_the_database_also_write_nothing(base, session_factory):
    # the file drops support-llama but gives its instance rule to ticket-triage
    start = BASE_REGISTRY.index("  - slug: support-llama")
    end = BASE_REGISTRY.index("  - slug: ticket-triage")
    text = (
        (BASE_REGISTRY[:start] + BASE_REGISTRY[end:])
        .replace(
            '{model_id: "meta.llama3-1-8b-instruct-v1:0", account: "111122223333", region: us-east-1}',
            "{instance: i-0abc1234def567890}",
        )
        .replace(
            "{slack_id: U0BOB0002, email: bob@example.com",
            "{slack_id: U0ZED0009, email: bob@example.com",
        )
    )
    before = snapshot(session_factory)

    with pytest.raises(InvalidRegistry) as caught:
        import_text(session_factory, text)

    messages = [str(problem) for problem in caught.value.problems]
    assert messages[0].startswith(
        "registry.yaml: people[1] (U0ZED0009).slack_id: bob@example.com is Slack user U0BOB0002 "
        "in the database, not U0ZED0009"
    )
    assert messages[1].startswith(
        "registry.yaml: workloads[1] (ticket-triage).match[0]: instance i-0abc1234def567890 "
        "(priority 1) is already a rule of workload support-llama (in the database)"
    )
    assert snapshot(session_factory) == before


def test_unknown_team_lists_teams_from_the_database(base, session_factory):
    text = "workloads:\n  - {slug: new-thing, team: serch}\n"
    with pytest.raises(InvalidRegistry) as caught:
        import_text(session_factory, text, filename="more.yaml")
    assert str(caught.value.problems[0]) == (
        "more.yaml: workloads[0] (new-thing).team: unknown team 'serch' (did you mean 'search'?); "
        "add it under teams: or use one of: search, support (line 2)"
    )


def test_missing_file_is_bad_input(engine, tmp_path, capsys):
    assert main(["registry", "import", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: no such file" in capsys.readouterr().err
