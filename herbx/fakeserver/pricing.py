"""What a model costs and who serves it: prices, token counts and provider names.

Counts and costs depend only on the model and the request, and costs are rounded to
10 decimals so that sums of them stay exact.
"""

import math

# USD per million tokens (prompt, completion); the longest matching prefix wins.
PRICES = {
    "openai/gpt-4o-mini": (0.15, 0.60),
    "openai/gpt-4o": (2.50, 10.00),
    "google/gemini-2.5-flash": (0.30, 2.50),
    "anthropic/claude-sonnet-4": (3.00, 15.00),
}
DEFAULT_PRICE = (1.00, 4.00)

# Vision models the fake serves; any other id gets the real API's 404.
KNOWN_MODELS = frozenset(
    {
        "openai/gpt-4o-mini",
        "openai/gpt-4o",
        "openai/gpt-4.1-mini",
        "anthropic/claude-sonnet-4.5",
        "anthropic/claude-haiku-4.5",
        "google/gemini-2.5-flash",
        "google/gemini-2.5-pro",
        "qwen/qwen2.5-vl-72b-instruct",
        "qwen/qwen2.5-vl-72b-instruct:free",
        "qwen/qwen2.5-vl-32b-instruct:free",
        "meta-llama/llama-3.2-11b-vision-instruct:free",
        "mistralai/mistral-small-3.2-24b-instruct:free",
    }
)
PROVIDERS = {"openai": "OpenAI", "google": "Google", "anthropic": "Anthropic"}


def price_of(model: str) -> tuple[float, float]:
    """Return (prompt, completion) USD per million tokens for a model id."""
    if model.endswith(":free"):
        return (0.0, 0.0)
    matches = [prefix for prefix in PRICES if model.startswith(prefix)]
    return PRICES[max(matches, key=len)] if matches else DEFAULT_PRICE


def cost_of(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    """Return the USD the fake bills, rounded to 10 decimals so sums stay exact."""
    prompt_price, completion_price = price_of(model)
    usd = (prompt_tokens * prompt_price + completion_tokens * completion_price) / 1e6
    return round(usd, 10)


def image_tokens(model: str, width: int, height: int, detail: str = "auto") -> int:
    """Count the prompt tokens of one image by OpenAI's 512-pixel tiling rules."""
    # gpt-4o-mini bills images at about 33 times the tokens of gpt-4o.
    base, per_tile = (2833, 5667) if "gpt-4o-mini" in model else (85, 170)
    if detail == "low":
        return base
    scale = min(1.0, 2048 / max(width, height))
    scale *= min(1.0, 768 / (min(width, height) * scale))
    tiles = math.ceil(width * scale / 512) * math.ceil(height * scale / 512)
    return base + per_tile * tiles


def text_tokens(text: str) -> int:
    """Count the tokens of a text at four characters a token."""
    return math.ceil(len(text) / 4)


def provider_name(model: str) -> str:
    """Return the provider OpenRouter names for a model id."""
    vendor = model.split("/")[0]
    return PROVIDERS.get(vendor, vendor.capitalize())
