// An Express app written with the official `inngest` package (v4), using what v4 adds beyond the
// core protocol: signals, defer, run metadata, step.fetch and step.ai.infer.
// `node features.mjs v4 <port> <server url> <app id>` (tests/js_app.py); GET /seen returns what the functions saw.
import { createHash } from "node:crypto";
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import express from "express";
import { Inngest, NonRetriableError } from "inngest-v4";
import { serve } from "inngest-v4/express";
import { createDefer, metadataMiddleware } from "inngest-v4/experimental";

const [, port, serverUrl, appId] = process.argv.slice(2);
// The SDK's AI metadata processor only joins an OpenTelemetry provider that exists before the client.
trace.setGlobalTracerProvider(new BasicTracerProvider());
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
// checkpointing: false: plain calls, as this server answers them today (no ctx.qi_id yet).
const inngest = new Inngest({ id: appId, isDev: true, baseUrl: serverUrl, checkpointing: false, middleware: [metadataMiddleware()] });
const seen = {};
const ev = (name) => `${appId}/${name}`;
// The keys the app sends never travel in events (which the server keeps): they derive from a
// value the test also knows, as tests/executor/test_sdk_features_e2e.py's secret_for does.
const secretFor = (prefix, seed) => `${prefix}-${createHash("sha256").update(seed).digest("hex").slice(0, 32)}`;

const waitsForSignal = inngest.createFunction(
  { id: "waits-for-signal", retries: 0, triggers: [{ event: ev("wait-signal") }], cancelOn: [{ event: ev("cancel-signal"), if: "event.data.signal == async.data.signal" }] },
  async ({ event, step }) => {
    const got = await step.waitForSignal("the-signal", {
      signal: event.data.signal, timeout: event.data.timeout || "30s", onConflict: event.data.conflict || "fail",
    });
    return { got };
  },
);

const sendsSignal = inngest.createFunction(
  { id: "sends-signal", triggers: [{ event: ev("send-signal") }] },
  async ({ event, step }) => {
    const sent = await step.sendSignal("send-it", { signal: event.data.signal, data: event.data.payload });
    return { sent };
  },
);

const deferred = createDefer(inngest, { id: "deferred-work" }, async ({ event, parents, sessions, step }) => {
  const done = await step.run("record", () => ({ data: event.data, parent: parents[0] }));
  seen[`deferred:${done.parent.runId}:${event.data.label}`] = { ...done, sessions: sessions ?? null };
  return done;
});

const defers = inngest.createFunction(
  { id: "defers", triggers: [{ event: ev("defers") }] },
  async ({ event, step, defer }) => {
    // The defer's own sessions layer over the calling run's (which the client stamps on the op).
    const meta = event.data.deferSessions ? { sessions: event.data.deferSessions } : undefined;
    defer("keep", { function: deferred, data: { label: "kept", n: event.data.n }, meta });
    const dropped = defer("drop", { function: deferred, data: { label: "dropped" } });
    await step.sleep("pause", "1s"); // both defers reach the server with this op
    dropped.abort();
    const doubled = await step.run("double", () => event.data.n * 2);
    if (event.data.fail) throw new NonRetriableError("parent failed");
    return { doubled };
  },
);

// The same with checkpointing: the defers reach the server in checkpoints, one made inside a step
// and one aborted inside a later step.
const defersCheckpointed = inngest.createFunction(
  { id: "defers-checkpointed", checkpointing: true, triggers: [{ event: ev("defers-checkpointed") }] },
  async ({ event, step, defer }) => {
    await step.run("defer-inside", () => { defer("keep", { function: deferred, data: { label: "kept", n: event.data.n } }); });
    const dropped = defer("drop", { function: deferred, data: { label: "dropped" } });
    await step.sleep("pause", "1s");
    await step.run("abort-inside", () => { dropped.abort(); });
    return await step.run("double", () => event.data.n * 2);
  },
);

const tagged = inngest.createFunction(
  { id: "metadata", triggers: [{ event: ev("metadata") }] },
  async ({ event, step }) => {
    await step.run("tagged-step", async () => {
      await inngest.metadata.set({ stage: "inside", n: event.data.n });
      return "tagged";
    });
    await step.run("tag-the-run", async () => {
      await inngest.metadata.run(event.data.otherRun || undefined).update({ score: 0.5 }, "quality");
      return "tagged the run";
    });
    return "done";
  },
);

const fetches = inngest.createFunction(
  { id: "fetches", retries: 1, triggers: [{ event: ev("fetch") }] },
  async ({ event, step }) => {
    try {
      const answer = await step.fetch(event.data.url, { method: "GET", headers: { "x-tag": event.data.tag, authorization: `Bearer ${secretFor("fetch", event.data.tag)}` } });
      return { status: answer.status, body: await answer.json() };
    } catch (err) {
      return { caught: String(err.message || err) };
    }
  },
);

const models = {
  // d.key: the secret derived from the prompt (secretFor), not anything in the event.
  openai: (step, d) => step.ai.models.openai({ model: "gpt-test", apiKey: d.key, baseUrl: `${d.url}/v1/` }),
  anthropic: (step, d) => step.ai.models.anthropic({ model: "claude-test", apiKey: d.key, baseUrl: `${d.url}/v1/`, defaultParameters: { max_tokens: 16 } }),
  gemini: (step, d) => step.ai.models.gemini({ model: "gemini-test", apiKey: d.key, baseUrl: `${d.url}/v1beta/` }),
  azure: (step, d) => step.ai.models.azureOpenai({ model: "gpt-test", apiKey: d.key, endpoint: `${d.url}/`, deployment: "dep", apiVersion: "2024-01-01" }),
};

const infers = inngest.createFunction(
  { id: "infers", retries: 2, triggers: [{ event: ev("infer") }] },
  async ({ event, step }) => {
    const d = { ...event.data, key: secretFor(`sk-${event.data.format}`, event.data.prompt) };
    try {
      const answer = await step.ai.infer("ask", {
        model: models[d.format](step, d),
        body: { messages: [{ role: "user", content: d.prompt }], fail_first: d.failFirst || 0, attempt_key: d.prompt },
      });
      return { answer };
    } catch (err) {
      return { caught: String(err.message || err) };
    }
  },
);

// An AI call as an OpenTelemetry GenAI instrumentation records it: a span with gen_ai.* attributes.
const aiCall = (model, inputTokens, outputTokens) => trace.getTracer("@opentelemetry/instrumentation-openai").startActiveSpan(
  "chat", { attributes: { "gen_ai.operation.name": "chat", "gen_ai.request.model": model, "gen_ai.provider.name": "openai",
    "gen_ai.usage.input_tokens": inputTokens, "gen_ai.usage.output_tokens": outputTokens, "gen_ai.prompt": "not kept" } },
  (span) => { span.end(); return "answered"; },
);

// Two AI calls in one step, one between steps (no step's); in the checkpointed variant the step
// reaches the server through POST /v1/checkpoint/{runId}/async with a defer and a run score.
const aiSteps = (id, checkpointing) => inngest.createFunction(
  { id, checkpointing, retries: 0, triggers: [{ event: ev(id) }] },
  async ({ event, step, runId, defer }) => {
    await step.run("asks-twice", async () => {
      aiCall("gpt-4.1-nano", 100, 10);
      aiCall("gpt-4.1-nano-2025-04-14", 50, 5);
      if (checkpointing) {
        defer("after-ai", { function: deferred, data: { label: "from-a-checkpointed-step" } });
        await inngest.score({ runId, name: "helpful", value: 1 });
      }
      return "asked";
    });
    aiCall("gpt-4.1-nano", 1, 1);
    await step.run("asks-nothing", () => "quiet");
    return event.data.n;
  },
);
const aiPlain = aiSteps("ai-steps", false);
const aiCheckpointed = aiSteps("ai-steps-checkpointed", true);

const app = express();
app.use(express.json({ limit: "10mb" }));
app.use("/api/inngest", serve({ client: inngest, functions: [waitsForSignal, sendsSignal, deferred, defers, defersCheckpointed, tagged, fetches, infers, aiPlain, aiCheckpointed] }));
app.get("/seen", (_req, res) => res.json(seen));
app.listen(Number(port), "127.0.0.1", () => console.log(`js features app on ${port}`));
