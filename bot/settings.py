"""Settings from the environment (README, "Environment"). Secrets are never logged or rendered."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from llmgov.models.base import DEFAULT_DATABASE_URL

SLACK_DEFAULT_API_URL = "https://slack.com/api/"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str = SLACK_DEFAULT_API_URL
    governance_channel: str | None = None
    admins: frozenset[str] = frozenset()  # Slack user ids (a user group id is expanded by bot/)
    port: int = 3000

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        api_url = env.get("SLACK_API_URL") or SLACK_DEFAULT_API_URL
        if not api_url.endswith("/"):
            api_url += "/"
        admins = frozenset(
            part.strip()
            for part in env.get("LLMGOV_ADMINS", "").replace(";", ",").split(",")
            if part.strip()
        )
        return cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            slack_bot_token=env.get("SLACK_BOT_TOKEN") or None,
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            slack_app_token=env.get("SLACK_APP_TOKEN") or None,
            slack_api_url=api_url,
            governance_channel=env.get("LLMGOV_CHANNEL") or None,
            admins=admins,
            port=int(env.get("PORT") or 3000),
        )

    def secrets(self) -> list[str]:
        """Every secret value, for log redaction."""
        return [
            s for s in (self.slack_bot_token, self.slack_signing_secret, self.slack_app_token) if s
        ]
