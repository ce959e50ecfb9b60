"""What a sheet is expected to cost, before any has been paid for.

Prices are USD per million tokens as OpenRouter listed them in November 2026; token
counts per sheet are for a 1600-pixel sheet with the built-in prompt (measured for
gpt-4o-mini from recorded answers, computed from the providers' image rules for the
others). They plan a budget; the ledger's own history replaces them as soon as a model
has been used, since reported costs are what is billed.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICED_ON = "2026-11"


@dataclass(frozen=True)
class Price:
    prompt: float  # USD per million prompt tokens
    completion: float  # USD per million completion tokens
    prompt_tokens: int  # per sheet, image included
    completion_tokens: int  # per sheet

    def per_sheet(self) -> float:
        return (
            self.prompt_tokens * self.prompt + self.completion_tokens * self.completion
        ) / 1e6


PRICES = {
    "openai/gpt-4o-mini": Price(0.15, 0.60, 39_630, 880),
    "openai/gpt-4o": Price(2.50, 10.00, 1_900, 700),
    "openai/gpt-4.1-mini": Price(0.40, 1.60, 2_700, 700),
    "anthropic/claude-sonnet-4.5": Price(3.00, 15.00, 2_600, 750),
    "anthropic/claude-haiku-4.5": Price(1.00, 5.00, 2_600, 750),
    "google/gemini-2.5-flash": Price(0.30, 2.50, 2_300, 700),
    "google/gemini-2.5-pro": Price(1.25, 10.00, 2_300, 900),
    "qwen/qwen2.5-vl-72b-instruct": Price(0.25, 0.75, 3_000, 700),
}


def price_of(model: str) -> Price | None:
    """Return the listed price of a model; ``:free`` models cost nothing."""
    if model.endswith(":free"):
        return Price(0.0, 0.0, 3_000, 700)
    return PRICES.get(model)


def per_sheet(model: str) -> float | None:
    """Return the listed cost of one sheet, or None for a model not in the table."""
    price = price_of(model)
    return price.per_sheet() if price else None
