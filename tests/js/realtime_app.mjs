// Inngest's realtime as a user writes it with the official `inngest` package (v4): a function that
// publishes an order's progress live, an endpoint that mints a subscription token for one order,
// and a page that shows the updates as they arrive. Served for the Python end-to-end tests:
// `node --experimental-websocket realtime_app.mjs <port> <server url> <app id>` (Node 20 needs the
// flag for the global WebSocket the SDK's subscribe() uses; Node 22 has it on).
import express from "express";
import { Inngest } from "inngest-v4";
import { serve } from "inngest-v4/express";
import { getSubscriptionToken, realtime } from "inngest-v4/realtime";

const [port, serverUrl, appId] = process.argv.slice(2);
const inngest = new Inngest({ id: appId, isDev: true, baseUrl: serverUrl });

const order = realtime.channel({ name: (orderId) => `order:${orderId}`, topics: { status: {}, done: {} } });

const trackOrder = inngest.createFunction(
  { id: "track-order", triggers: [{ event: `${appId}/order.placed` }] },
  async ({ event, step }) => {
    const channel = order(event.data.orderId);
    for (const status of ["paid", "packed", "shipped"]) {
      await step.run(`work-${status}`, () => new Promise((resolve) => setTimeout(resolve, 200)));
      await step.realtime.publish(`publish-${status}`, channel.status, { status, at: Date.now() });
    }
    // Outside a step: the client's publish. Like any code outside a step it may run on more than
    // one call of the function, so subscribers may hear it more than once.
    await inngest.realtime.publish(channel.done, { delivered: true });
    return { orderId: event.data.orderId };
  },
);

// What a Node subscriber (the SDK's subscribe(), over the WebSocket) received, by order id.
const heard = {};

const app = express();
app.use(express.json({ limit: "10mb" }));
app.use("/api/inngest", serve({ client: inngest, functions: [trackOrder] }));

app.get("/token", async (req, res) => {
  const token = await getSubscriptionToken(inngest, { channel: order(String(req.query.order)), topics: ["status", "done"] });
  res.json({ key: token.key, apiBaseUrl: serverUrl });
});

app.post("/listen", async (req, res) => {
  const orderId = String(req.query.order);
  heard[orderId] = [];
  await inngest.realtime.subscribe({
    channel: order(orderId),
    topics: ["status", "done"],
    onMessage: (message) => heard[orderId].push({ topic: message.topic, data: message.data, runId: message.runId }),
  });
  res.json({ listening: true });
});

app.get("/heard", (req, res) => res.json(heard[String(req.query.order)] || []));

app.get("/order", (_req, res) => res.type("html").send(PAGE));

// The browser side: a token from this app, then the server's stream, read two ways: a WebSocket
// (what the SDK's subscribe() opens) and server-sent events (an EventSource).
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Order tracking</title>
<style>body{font-family:sans-serif;margin:2em} li{margin:.2em 0} .done{color:green}</style></head>
<body>
<h1>Order <span id="order"></span></h1>
<p id="state">connecting…</p>
<h2>WebSocket</h2><ul id="ws"></ul>
<h2>Server-sent events</h2><ul id="sse"></ul>
<script>
const orderId = new URLSearchParams(location.search).get("order");
document.getElementById("order").textContent = orderId;
const show = (list, message) => {
  const item = document.createElement("li");
  item.textContent = message.topic + ": " + JSON.stringify(message.data);
  item.className = message.topic;
  item.dataset.receivedAt = String(Date.now());
  document.getElementById(list).appendChild(item);
};
const token = async () => (await fetch("/token?order=" + encodeURIComponent(orderId))).json();
let open = 0;
const opened = () => { if (++open === 2) document.getElementById("state").textContent = "live"; };
(async () => {
  const forSocket = await token();
  const socket = new WebSocket(forSocket.apiBaseUrl.replace(/^http/, "ws") + "/v1/realtime/connect?token=" + forSocket.key);
  socket.onopen = opened;
  socket.onmessage = (event) => { const message = JSON.parse(event.data); if (message.kind === "data") show("ws", message); };
  const forEvents = await token();
  const events = new EventSource(forEvents.apiBaseUrl + "/v1/realtime/sse?token=" + forEvents.key);
  events.onopen = opened;
  events.onmessage = (event) => { const message = JSON.parse(event.data); if (message.kind === "data") show("sse", message); };
})();
</script>
</body></html>`;

app.listen(Number(port), "127.0.0.1", () => console.log(`realtime app on ${port}`));
