"""The SDK app's step.ai.infer function (the Python SDK's AIGateway op): the server calls the model
URL given in the event (a fake model server inside the test) with the key given in the event."""
from __future__ import annotations

import hashlib

import inngest
from inngest.experimental.ai import openai


def secret_for(prefix: str, seed: str) -> str:
    """The key the app sends: derived from a value the test also knows, so it never travels in an
    event (which the server keeps) and the test can look for it everywhere."""
    return f"{prefix}-{hashlib.sha256(seed.encode()).hexdigest()[:32]}"


def ai_functions(client: inngest.Inngest) -> list[inngest.Function]:
    @client.create_function(fn_id="ai-infer", trigger=inngest.TriggerEvent(event="test/ai-infer"), retries=2)
    def ai_infer(ctx: inngest.ContextSync) -> dict:
        data = ctx.event.data
        adapter = openai.Adapter(auth_key=secret_for("sk-py", str(data["prompt"])), base_url=str(data["url"]), model="gpt-test",
                                 headers={"x-team": str(data.get("team", ""))})
        body = {"messages": [{"role": "user", "content": data["prompt"]}], "fail_first": data.get("fail_first", 0),
                "attempt_key": data["prompt"]}
        try:
            answer = ctx.step.ai.infer("ask", adapter=adapter, body=body)
        except inngest.StepError as exc:
            return {"caught": exc.message}
        return {"answer": answer}

    return [ai_infer]
