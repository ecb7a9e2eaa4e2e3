"""Prices for `/llm-decide` on every surface (Slack listener, modal, CLI): what the database
recorded, then the catalogues bundled with the collectors (genai-prices and the override
file for Bedrock tokens, the dated GPU price table for instances)."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from llmgov.collectors.prices import PriceBook, gpu_hourly_price
from llmgov.commands.decide import DatabasePrices, GpuPriceQuote, TokenPriceQuote


class CataloguePrices:
    """The bundled price catalogues, used when the database has not recorded a price yet."""

    def __init__(self, today: date | None = None):
        self.book = PriceBook.load(today=today)

    def token(self, model_id: str) -> TokenPriceQuote | None:
        price = self.book.token_price(model_id)
        if price is None:
            return None

        def optional(value) -> float | None:
            return None if value is None else float(value)

        return TokenPriceQuote(
            float(price.input_mtok),
            float(price.output_mtok),
            f"{price.source}, {price.as_of}",
            optional(price.cache_read_mtok),
            optional(price.cache_write_mtok),
        )

    def gpu_hour(self, instance_type: str) -> GpuPriceQuote | None:
        price = gpu_hourly_price(instance_type)
        if price is None or price.per_hour is None:
            return None
        return GpuPriceQuote(
            float(price.per_hour), f"{price.source}, {price.as_of}, {price.region}"
        )


def decision_prices(session: Session, region: str | None = None) -> DatabasePrices:
    """Prices for a decision: what the database recorded, then the bundled catalogues."""
    return DatabasePrices(session, fallback=CataloguePrices(), region=region)


__all__ = ["CataloguePrices", "decision_prices"]
