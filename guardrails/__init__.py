"""The cost circuit breaker: a per-workload policy, its state, and the AWS actions that
stop spend (an IAM deny on Bedrock invocation, or an SSM switch a self-hosted app reads).

Nothing here imports Slack; `bot/` renders the messages and wires the buttons.
"""
