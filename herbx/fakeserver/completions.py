"""Chat completions: request validation, scripted faults, billing and generations.

A completion is billed exactly when a body with ``usage.cost`` is built; faults that
report no usage are never billed. A ``hang`` that outlives its client is still billed
when it wakes, as the real service bills work the client never saw. Each billed
completion is kept as a generation for ``GET /generation``.
"""

import base64
import binascii
import dataclasses
import io
import secrets
import string
import time
from typing import Any

from PIL import Image

from herbx.fakeserver.accounts import Accounts, Key
from herbx.fakeserver.catalogue import FINGERPRINT_SIDE, Answer, Catalogue
from herbx.fakeserver.faults import PROSE_REPLY, PROVIDER_RAW, Fault, fault_reply
from herbx.fakeserver.pricing import cost_of, image_tokens, provider_name, text_tokens
from herbx.fakeserver.replies import MESSAGES, Refused, Reply, error_reply, json_reply

MAX_IMAGE_BYTES = 20 * 1024 * 1024


@dataclasses.dataclass
class ChatRequest:
    """A validated chat completion request with its one decoded image."""

    model: str
    data: bytes
    image: Image.Image
    size: tuple[int, int]
    detail: str
    text: str


def parse_chat(body: Any, models: frozenset[str] | None = None) -> ChatRequest:
    """Validate a chat completion body and decode its one image.

    ``models`` lists the model ids that exist; None accepts any id with a vendor.
    """
    if not isinstance(body, dict):
        raise Refused(error_reply(400, "Request body must be a JSON object"))
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or "/" not in model:
        raise Refused(error_reply(400, f"{model!r} is not a valid model ID"))
    if "does-not-exist" in model or (models is not None and model not in models):
        raise Refused(error_reply(404, f"No endpoints found for {model}."))
    if not isinstance(messages, list) or not messages:
        raise Refused(
            error_reply(400, 'Input required: specify "prompt" or "messages"')
        )

    texts, images = [], []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        for part in content if isinstance(content, list) else []:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                texts.append(str(part.get("text", "")))
            elif kind == "image_url":
                images.append(part.get("image_url") or {})
    if not texts or len(images) != 1:
        raise Refused(error_reply(400, "Expected text and exactly one image_url part"))

    header, _, encoded = str(images[0].get("url", "")).partition(",")
    message = "Invalid image: expected a decodable data:image/...;base64, URL"
    invalid = error_reply(400, message, error_type="invalid_image")
    if not (header.startswith("data:image/") and header.endswith(";base64")):
        raise Refused(invalid)
    try:
        data = base64.b64decode(encoded, validate=True)
        if len(data) > MAX_IMAGE_BYTES:
            too_large = error_reply(
                400, "Image too large", error_type="image_too_large"
            )
            raise Refused(too_large)
        image = Image.open(io.BytesIO(data))
        size = image.size  # draft() below shrinks image.size; tokens need the sent one
        image.draft("L", (FINGERPRINT_SIDE * 8, FINGERPRINT_SIDE * 8))
        image.load()
    except (binascii.Error, OSError, ValueError, Image.DecompressionBombError):
        raise Refused(invalid) from None
    detail = str(images[0].get("detail", "auto"))
    return ChatRequest(model, data, image, size, detail, "\n".join(texts))


def _generation_id() -> str:
    alphabet = string.ascii_letters + string.digits
    suffix = "".join(secrets.choice(alphabet) for _ in range(20))
    return f"gen-{int(time.time())}-{suffix}"


def _envelope(model: str, gen_id: str, provider: str | None = None) -> dict[str, Any]:
    return {
        "id": gen_id,
        "provider": provider or provider_name(model),
        "model": model,
        "object": "chat.completion",
        "created": int(time.time()),
    }


class Completions(Accounts):
    """Chat completions billed to the account's keys; a layer of ``FakeOpenRouter``.

    The attributes below are set by ``FakeOpenRouter.__init__``.
    """

    catalogue: Catalogue
    latency: float
    models: frozenset[str] | None
    _faults: list[list[Any]]
    _generations: dict[str, dict[str, Any]]

    def script(self, faults: list[Fault]) -> None:
        """Queue faults for the next chat completion requests, after those queued."""
        with self._lock:
            self._faults.extend([fault, fault.times] for fault in faults)

    def pending_faults(self) -> int:
        """Return how many scripted fault applications are still queued."""
        with self._lock:
            return sum(remaining for _, remaining in self._faults)

    def _generation(self, secret: str | None, gen_id: str) -> Reply:
        self._auth(secret)
        with self._lock:
            data = self._generations.get(gen_id)
        if data is None:
            return error_reply(404, f"Generation {gen_id} not found")
        return json_reply(200, {"data": data})

    def _chat(self, secret: str | None, body: Any) -> Reply:
        if self._stopping.wait(self.latency):
            return Reply(0, drop=True)
        key = self._auth(secret)
        self._check_account(key)
        chat = parse_chat(body, self.models)
        specimen = self.catalogue.identify(chat.data, chat.image)

        tokens = image_tokens(chat.model, *chat.size, chat.detail)
        answer = self.catalogue.answer(specimen, tokens + text_tokens(chat.text))
        cap = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(cap, int) and 0 < cap < answer.completion_tokens:
            # Like the real model, stop mid-answer when the output budget runs out.
            cut = len(answer.content or "") * cap // answer.completion_tokens
            answer = dataclasses.replace(
                answer,
                content=answer.content[:cut],
                completion_tokens=cap,
                finish_reason="length",
            )
        with self._lock:
            fault = self._next_fault()
        reply = self._apply_fault(fault, key, chat.model, answer) if fault else None
        reply = reply or self._complete(key, chat.model, answer)
        reply.specimen = specimen
        return reply

    def _next_fault(self) -> Fault | None:
        if not self._faults:
            return None
        entry = self._faults[0]
        entry[1] -= 1
        if entry[1] <= 0:
            self._faults.pop(0)
        return entry[0]

    def _apply_fault(
        self, fault: Fault, key: Key, model: str, answer: Answer
    ) -> Reply | None:
        metadata = {
            "raw": fault.raw or PROVIDER_RAW,
            "provider_name": provider_name(model),
        }
        message = fault.message or MESSAGES[502]
        inner = {"code": fault.code, "message": message, "metadata": metadata}
        content = answer.content or ""
        prompt_only = Answer("", answer.prompt_tokens, 0)
        match fault.kind:
            case "http":
                return fault_reply(fault)
            case "drop":
                return Reply(0, drop=True)
            case "hang":
                if self._stopping.wait(fault.seconds):
                    return Reply(0, drop=True)
            case "error_body":
                return json_reply(200, {"error": inner})
            case "empty_choices":
                envelope = _envelope(model, _generation_id())
                return json_reply(200, {**envelope, "choices": []})
            case "finish_error":
                prompt_only.finish_reason = "error"
                return self._complete(key, model, prompt_only, error=inner)
            case "null_content" | "empty_content":
                prompt_only.content = None if fault.kind == "null_content" else ""
                return self._complete(key, model, prompt_only)
            case "truncated":
                half = content[: len(content) // 2]
                answer = Answer(
                    half, answer.prompt_tokens, answer.completion_tokens // 2
                )
                answer.finish_reason = "length"
            case "fenced":
                prose = "Here is the data extracted from the herbarium sheet:\n\n"
                content = f"{prose}```json\n{content}\n```"
                answer = dataclasses.replace(answer, content=content)
            case "prose":
                tokens = text_tokens(PROSE_REPLY)
                answer = dataclasses.replace(
                    answer, content=PROSE_REPLY, completion_tokens=tokens
                )
        return self._complete(key, model, answer)

    def _complete(
        self, key: Key, model: str, answer: Answer, error: dict | None = None
    ) -> Reply:
        gen_id = _generation_id()
        prompt, completion = answer.prompt_tokens, answer.completion_tokens
        cost = cost_of(model, prompt, completion)
        finish = answer.finish_reason
        message = {"role": "assistant", "content": answer.content, "refusal": None}
        choice = {
            "index": 0,
            "message": message,
            "finish_reason": finish,
            "native_finish_reason": finish,
        }
        if error is not None:
            choice["error"] = error
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "cost": cost,
            "is_byok": False,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        envelope = _envelope(model, gen_id, answer.provider)
        payload = {**envelope, "choices": [choice], "usage": usage}
        generation = {
            "id": gen_id,
            "model": model,
            "provider_name": provider_name(model),
            "total_cost": cost,
            "tokens_prompt": prompt,
            "tokens_completion": completion,
            "latency": int(self.latency * 1000),
            "num_media_prompt": 1,
            "finish_reason": finish,
        }

        with self._lock:
            key.usage += cost
            key.completions += 1
            if key.fails_after is not None and key.completions >= key.fails_after:
                key.dead_status = key.fail_status
            self._generations[gen_id] = generation
        return json_reply(200, payload, cost=cost, generation_id=gen_id)
