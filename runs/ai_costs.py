"""What an AI call cost, estimated from its model and token counts, for `inngest.ai` metadata.

The SDKs report a step's AI calls (OpenTelemetry `gen_ai.*` attributes, summed per step) as
`inngest.ai` metadata with `input_tokens`, `output_tokens`, `request_model` and `response_model`;
Inngest's dev server adds `estimated_cost` in USD when the caller did not give one and the model's
list price is known. The model that served the call is priced first, then (when its price is
not known) the one requested.

Model names are matched exactly, then with trailing "-" segments dropped one at a time, so a dated
snapshot (`gpt-4.1-nano-2025-04-14`, `claude-sonnet-4-20250514`) takes its model's price and
`gpt-5.4-nano` never takes `gpt-5.4`'s by accident of a shared prefix. A provider prefix
(`openai/gpt-4o`) is ignored.
"""
from __future__ import annotations

from typing import Any, Optional

AI_METADATA_KIND = "inngest.ai"

# Public list prices, USD per million tokens: (input, output).
_PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    # OpenAI
    "gpt-3.5-turbo": (0.50, 1.50),
    "gpt-4": (30.0, 60.0),
    "gpt-4-turbo": (10.0, 30.0),
    "gpt-4o": (2.50, 10.0),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.0),
    "gpt-5-mini": (0.25, 2.0),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5.1": (1.25, 10.0),
    "gpt-5.2": (1.75, 14.0),
    "gpt-5.4": (2.50, 15.0),
    "gpt-5.4-mini": (0.75, 4.50),
    "gpt-5.4-nano": (0.20, 1.25),
    "gpt-5.4-pro": (30.0, 180.0),
    "o1": (15.0, 60.0),
    "o1-mini": (1.10, 4.40),
    "o3": (2.0, 8.0),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    # Anthropic
    "claude-3-haiku": (0.25, 1.25),
    "claude-3-opus": (15.0, 75.0),
    "claude-3-5-haiku": (0.80, 4.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4-5": (5.0, 25.0),
    # Google
    "gemini-1.5-flash": (0.075, 0.30),
    "gemini-1.5-pro": (1.25, 5.0),
    "gemini-2.0-flash": (0.10, 0.40),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-pro": (1.25, 10.0),
}


def estimated_cost(model: str, input_tokens: int | float, output_tokens: int | float) -> Optional[float]:
    """USD, rounded to a millionth of a dollar; None when the model's price is not known."""
    prices = _prices_of(model)
    if prices is None:
        return None
    input_price, output_price = prices
    return round((input_tokens * input_price + output_tokens * output_price) / 1_000_000, 6)


def _prices_of(model: str) -> Optional[tuple[float, float]]:
    name = model.strip().lower().rsplit("/", 1)[-1]
    while name:
        if name in _PRICES_PER_MILLION:
            return _PRICES_PER_MILLION[name]
        if "-" not in name:
            return None
        name = name.rsplit("-", 1)[0]
    return None


def with_estimated_cost(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    """An `inngest.ai` update's values with `estimated_cost` added when it has none and its model
    is priced; any other update, or one that already says what it cost, as it came."""
    if kind != AI_METADATA_KIND or values.get("estimated_cost") is not None:
        return values
    input_tokens, output_tokens = _count(values.get("input_tokens")), _count(values.get("output_tokens"))
    for model in (values.get("response_model"), values.get("request_model")):
        cost = estimated_cost(model, input_tokens, output_tokens) if isinstance(model, str) else None
        if cost is not None:
            return {**values, "estimated_cost": cost}
    return values


def _count(value: Any) -> int | float:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return value if is_number and value >= 0 else 0
