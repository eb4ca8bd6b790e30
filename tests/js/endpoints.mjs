// Durable Endpoints written with the official `inngest` v4 package, as a user would write them
// (plain Node HTTP server, the SDK's Node endpoint adapter), served for the Python end-to-end
// tests. `node endpoints.mjs <port> <server url> <app id>`. Each path is its own endpoint.
import http from "node:http";
import { Inngest, NonRetriableError, step } from "inngest-v4";
import { getAsyncCtx } from "inngest-v4/experimental";
import { createEndpointServer, endpointAdapter } from "inngest-v4/node";

const [port, serverUrl, appId] = process.argv.slice(2);
const inngest = new Inngest({ id: appId, isDev: true, baseUrl: serverUrl, endpointAdapter });
const failedOnce = new Set(); // runs whose "flaky" step has already failed once

const routes = {
  // Steps run inside the request; the response comes straight back.
  "/sync": async (url) => {
    const a = await step.run("a", () => 1);
    const b = await step.run("b", () => a + 1);
    return { a, b, q: url.searchParams.get("q") }; // sent as JSON, and checkpointed as the run's output
  },
  // A sleep cannot be waited for in the request: the client is redirected to the run's output,
  // and the server calls the endpoint again after the sleep.
  "/sleeps": async () => {
    const a = await step.run("a", () => "hello");
    await step.sleep("nap", "1s");
    const b = await step.run("b", () => "world");
    return `${a} ${b}`;
  },
  // A failing step is retried by the server, in async mode.
  "/flaky": async (url, runId) => {
    const value = await step.run("flaky", () => {
      if (!failedOnce.has(runId)) {
        failedOnce.add(runId);
        throw new Error("not yet");
      }
      return "ok after a retry";
    });
    return Response.json({ value }, { status: 201 });
  },
  // A step that gives up fails the run, after the server has called the endpoint to see it.
  "/gives-up": async () => {
    await step.run("hopeless", () => {
      throw new NonRetriableError("no way");
    });
    return "unreachable";
  },
};

const handler = inngest.endpoint(async (req) => {
  const url = new URL(req.url);
  const route = routes[url.pathname];
  if (!route) return new Response("no such route", { status: 404 });
  const ctx = await getAsyncCtx();
  return route(url, ctx?.execution?.ctx?.runId);
});

// /ready answers outside the endpoints, so waiting for the app to start makes no run.
const durable = createEndpointServer(handler);
http.createServer((req, res) => (req.url === "/ready" ? res.end("ok") : durable.emit("request", req, res)))
  .listen(Number(port), "127.0.0.1", () => console.log(`durable endpoints on ${port}`));
