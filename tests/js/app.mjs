// An Express app written with the official `inngest` package, as a user would write it, served for
// the Python end-to-end tests. `node app.mjs <v3|v4> <port> <server url> <app id>`.
//
// v3 and v4 differ in how a function is declared (v3: createFunction(options, trigger, handler);
// v4: the triggers go in the options); everything else here is the same code for both.
import express from "express";

const [major, port, serverUrl, appId, mode] = process.argv.slice(2);
const sdk = await import(major === "v3" ? "inngest-v3" : "inngest-v4");
const { serve } = await import(major === "v3" ? "inngest-v3/express" : "inngest-v4/express");
const { Inngest, NonRetriableError } = sdk;

// v4 checkpoints by default (steps reported to /v1/checkpoint/{runId}/async inside one call);
// "plain" turns that off: one call per step.
const inngest = new Inngest({ id: appId, isDev: true, baseUrl: serverUrl, ...(mode === "plain" ? { checkpointing: false } : {}) });
const seen = {}; // what the functions saw, read by the tests at GET /seen
const count = (key) => (seen[key] = (seen[key] || 0) + 1);
// Event names carry the app id, so apps of both majors can share one server in a test run.
const ev = (name) => `${appId}/${name}`;

function fn(options, trigger, handler) {
  return major === "v3"
    ? inngest.createFunction(options, trigger, handler)
    : inngest.createFunction({ ...options, triggers: [trigger] }, handler);
}

const threeSteps = fn({ id: "three-steps" }, { event: ev("three-steps") }, async ({ event, step }) => {
  const one = await step.run("one", () => event.data.start + 1);
  const two = await step.run("two", () => one * 10);
  const three = await step.run("three", () => ({ one, two }));
  return { result: three, eventId: event.id };
});

const flaky = fn({ id: "flaky", retries: 3 }, { event: ev("flaky") }, async ({ event, step, runId }) => {
  return step.run("flaky-step", () => {
    if (count(`flaky:${runId}`) <= 2) throw new Error("not yet");
    return "third time lucky";
  });
});

const sleeps = fn({ id: "sleeps" }, { event: ev("sleeps") }, async ({ step }) => {
  const before = await step.run("before", () => Date.now());
  await step.sleep("nap", "1s");
  const after = await step.run("after", () => Date.now());
  return { slept: (after - before) / 1000 };
});

const waits = fn({ id: "waits" }, { event: ev("waits") }, async ({ event, step }) => {
  const approval = await step.waitForEvent("approval", {
    event: ev("approve"), timeout: event.data.timeout || "30s", if: "event.data.order == async.data.order",
  });
  return { approval: approval ? approval.data : null };
});

const child = fn({ id: "child" }, { event: ev("never") }, async ({ event, step }) => {
  if (event.data.fail) throw new NonRetriableError("child gave up");
  return step.run("double", () => event.data.n * 2);
});

const parent = fn({ id: "parent", retries: 0 }, { event: ev("parent") }, async ({ event, step }) => {
  try {
    const doubled = await step.invoke("call-child", { function: child, data: { n: event.data.n, fail: event.data.fail } });
    return { doubled };
  } catch (err) {
    return { caught: err.message };
  }
});

const parallel = fn({ id: "parallel" }, { event: ev("parallel") }, async ({ step }) => {
  const values = await Promise.all([1, 2, 3].map((i) => step.run(`square-${i}`, () => i * i)));
  const total = await step.run("total", () => values.reduce((a, b) => a + b, 0));
  return { values, total };
});

// A parallel group whose last member to end is a sleep: as in Inngest, the call the sleep's end
// makes asks the SDK to plan the next step ("b", then run by a call of its own); the calls after
// run steps at once again ("c").
const parallelSleep = fn({ id: "parallel-sleep" }, { event: ev("parallel-sleep") }, async ({ step }) => {
  const [a] = await Promise.all([step.run("a", () => "a"), step.sleep("nap", "1s")]);
  const b = await step.run("b", () => `${a}b`);
  const c = await step.run("c", () => `${b}c`);
  return { c };
});

const failing = fn(
  {
    id: "failing", retries: 0,
    onFailure: async ({ event, error }) => {
      seen[`on-failure:${event.data.run_id}`] = {
        message: error.message, original: event.data.event.data, error: event.data.error,
      };
      return "handled";
    },
  },
  { event: ev("failing") },
  async ({ event }) => { throw new Error(`boom ${event.data.tag}`); },
);

const cancellable = fn(
  { id: "cancellable", cancelOn: [{ event: ev("cancel"), if: "event.data.order == async.data.order" }] },
  { event: ev("cancellable") },
  async ({ step }) => {
    await step.sleep("long-nap", "60s");
    return "woke up";
  },
);

const sender = fn({ id: "sender" }, { event: ev("sender") }, async ({ event, step }) => {
  const sent = await step.sendEvent("send-followup", { name: ev("three-steps"), data: { start: event.data.start } });
  return { ids: sent.ids };
});

// Slow steps: a worker can be killed while the app is between checkpoints (v4 checkpointing).
const slowSteps = fn({ id: "slow-steps" }, { event: ev("slow-steps") }, async ({ event, step, runId }) => {
  const done = [];
  for (const i of [1, 2, 3, 4, 5]) {
    done.push(await step.run(`slow-${i}`, async () => {
      count(`slow:${runId}:${i}`);
      await new Promise((resolve) => setTimeout(resolve, event.data.ms));
      return i;
    }));
  }
  return done;
});

// ctx.requestId and ctx.jobId (v4) of every call: a step, then a discovery that fails once (one
// call per step, so the calls can be counted; with checkpointing the step would ride the first call).
const callIds = fn({ id: "call-ids", retries: 1, checkpointing: false }, { event: ev("call-ids") }, async ({ step, runId, attempt, requestId, jobId }) => {
  (seen[`call-ids:${runId}`] ||= []).push([attempt, requestId ?? null, jobId ?? null]);
  await step.run("one", () => 1);
  if (attempt === 0) throw new Error("once more");
  return "done";
});

// The same with v4's checkpointing: the step rides the first call (reported to /v1/checkpoint),
// which then fails; its retry is still the same job.
const callIdsCheckpointed = fn({ id: "call-ids-checkpointed", retries: 1 }, { event: ev("call-ids-checkpointed") }, async ({ step, runId, attempt, jobId }) => {
  (seen[`call-ids-checkpointed:${runId}`] ||= []).push([attempt, jobId ?? null]);
  await step.run("one", () => 1);
  if (attempt === 0) throw new Error("once more");
  return "done";
});

// ctx.sessions (v4): the run's sessions, and those of the runs it starts by sendEvent and invoke.
const sessionsChild = fn({ id: "sessions-child" }, { event: ev("sessions-child") }, async ({ event, sessions }) => {
  seen[`sessions:${event.data.tag}:${event.data.via}`] = sessions ?? null;
  return event.data.via;
});

const sessionsParent = fn({ id: "sessions-parent" }, { event: ev("sessions") }, async ({ event, step, sessions }) => {
  seen[`sessions:${event.data.tag}:parent`] = sessions ?? null;
  await step.sendEvent("send-child", { name: ev("sessions-child"), data: { tag: event.data.tag, via: "send" } });
  return step.invoke("invoke-child", { function: sessionsChild, data: { tag: event.data.tag, via: "invoke" } });
});

const app = express();
app.use(express.json({ limit: "10mb" }));
app.use("/api/inngest", serve({
  client: inngest,
  functions: [
    threeSteps, flaky, sleeps, waits, child, parent, parallel, parallelSleep, failing, cancellable, sender, slowSteps,
    callIds, callIdsCheckpointed, sessionsChild, sessionsParent,
  ],
}));
app.get("/seen", (_req, res) => res.json(seen));
app.listen(Number(port), "127.0.0.1", () => console.log(`js ${major} app on ${port}`));
