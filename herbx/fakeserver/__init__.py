"""A fake of the OpenRouter API, served over real HTTP on 127.0.0.1.

Tests and demos point herbx at ``FakeOpenRouter.url`` instead of openrouter.ai. The fake
follows the project's notes on the real API: the same paths, bodies, error envelopes
and status codes, including the undocumented ones (errors inside 200 bodies, HTML
error pages, 403 for a key over its own limit).

A completion answers with the recorded model output when the request image is a
resized or re-encoded copy of a recorded specimen, and with a deterministic answer
marked as fake otherwise. Scripted ``Fault`` objects replace the next answers.

Invariants:

- Every request to every endpoint is appended once to ``requests`` when it has been
  answered, dropped, or abandoned at shutdown (status 0 for the last two).
- A completion is billed exactly when the fake builds a body with ``usage.cost``;
  faults that report no usage are never billed. A ``hang`` that outlives its client is
  still billed when it wakes, as the real service bills work the client never saw.
- Content, token counts and cost depend only on the image, model and request.
- Usage never resets: the fake does not live until midnight UTC.
- Nothing is written to stdout or stderr apart from the CLI's one ready line, so no
  secret can leak through the fake.

Modules: ``server`` (the HTTP server and routes), ``completions`` (chat completions),
``accounts`` (keys, limits, billing), ``catalogue`` (specimens and recorded answers),
``faults`` (scripted faults), ``pricing`` (prices and token counts), ``replies`` (reply
values and error envelopes) and ``cli`` (``python -m herbx.fakeserver``).
"""

from herbx.fakeserver.accounts import (
    EDITABLE,
    KEY_PREFIX,
    LIMIT_RESETS,
    USAGE_FIELDS,
    hash_key,
    mask_key,
)
from herbx.fakeserver.catalogue import (
    FINGERPRINT_SIDE,
    MATCH_THRESHOLD,
    Catalogue,
    fingerprint,
)
from herbx.fakeserver.cli import main
from herbx.fakeserver.completions import MAX_IMAGE_BYTES
from herbx.fakeserver.faults import FAULT_KINDS, PROSE_REPLY, PROVIDER_RAW, Fault
from herbx.fakeserver.pricing import (
    DEFAULT_PRICE,
    PRICES,
    PROVIDERS,
    cost_of,
    image_tokens,
    price_of,
)
from herbx.fakeserver.replies import MESSAGES
from herbx.fakeserver.server import API_PREFIX, FakeOpenRouter, RequestRecord

__all__ = [
    "API_PREFIX",
    "DEFAULT_PRICE",
    "EDITABLE",
    "FAULT_KINDS",
    "FINGERPRINT_SIDE",
    "KEY_PREFIX",
    "LIMIT_RESETS",
    "MATCH_THRESHOLD",
    "MAX_IMAGE_BYTES",
    "MESSAGES",
    "PRICES",
    "PROSE_REPLY",
    "PROVIDERS",
    "PROVIDER_RAW",
    "USAGE_FIELDS",
    "Catalogue",
    "FakeOpenRouter",
    "Fault",
    "RequestRecord",
    "cost_of",
    "fingerprint",
    "hash_key",
    "image_tokens",
    "main",
    "mask_key",
    "price_of",
]
