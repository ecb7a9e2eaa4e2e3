"""One module per slash command and interactive action: text → query → view model.

Nothing here imports Slack: `bot/` renders the view models as Block Kit.
"""
