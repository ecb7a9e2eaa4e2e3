"""The Slack edge and the processes: Bolt app, listeners, Block Kit, outbox, scheduler, CLI."""
