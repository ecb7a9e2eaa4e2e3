"""Block Kit builders: pure functions from view models to `bot.blocks.common.Message`."""
