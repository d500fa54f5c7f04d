// Mixed traffic for the load generator (bench/load-generator.mjs): several flows at once, each on its
// own keep-alive connections, each connection running its flow's steps in order, over and over, until
// the time is up. autocannon runs one request shape per load; a flow here can create a role and then
// delete the role it created. Plain JavaScript and node:http only; 127.0.0.1 only (checked here too).
//
// spec: {
//   base: "http://127.0.0.1:<port>", seconds, timeoutMs,
//   flows: [{ name, connections, steps: [{ label, method, path, headers?, body?, capture?: { var: "field" } }] }]
// }
// In path, header values and body: {u} is a value unique in this process (one per request), {ip} an
// IPv4 address made from it, {var} a value captured from an earlier step's JSON response in the same
// pass of the flow. A step whose capture finds nothing ends the pass (the next one starts over).
//
// Result: { seconds, byLabel: { <label>: { count, statuses, socketErrors, timeouts, p50Ms, p99Ms, maxMs } }, completedPerSecond }
import http from "node:http";

const RUN_TAG = Math.random().toString(36).slice(2, 8);
let unique = 0;

/** A value no other request of this process gets (also across loads). */
export const uniqueValue = () => `${RUN_TAG}${(unique++).toString(36)}`;

/** A distinct IPv4 address per call (10.0.0.0/8, then wrapping): one rate-limit client each. */
let addresses = 0;
export function clientAddress() {
  const n = (addresses++ % 16_777_214) + 1;
  return `10.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function fill(template, values) {
  if (typeof template !== "string") return template;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** One request on `agent`; resolves with { status, body } or { error: "timeout" | "socket" }. */
function send(agent, target, step, values, timeoutMs) {
  return new Promise((resolve) => {
    const body = step.body === undefined ? undefined : fill(step.body, values);
    const headers = {};
    for (const [key, value] of Object.entries(step.headers ?? {})) headers[key] = fill(value, values);
    if (body !== undefined) headers["content-length"] = Buffer.byteLength(body);
    let settled = false;
    const done = (result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const request = http.request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        method: step.method ?? "GET",
        path: fill(step.path, values),
        headers,
      },
      (response) => {
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("end", () => done({ status: response.statusCode, body: Buffer.concat(chunks) }));
        response.on("error", () => done({ error: "socket" }));
      },
    );
    // A setTimeout deadline, not AbortSignal.timeout (nodejs/node#57736 can lose the latter).
    const timer = setTimeout(() => {
      done({ error: "timeout" });
      request.destroy();
    }, timeoutMs);
    request.on("error", () => done({ error: "socket" }));
    request.end(body);
  });
}

export async function runMixed(spec) {
  const target = new URL(spec.base);
  if (target.hostname !== "127.0.0.1") throw new Error(`mixed load only targets 127.0.0.1; refusing ${spec.base}`);
  const timeoutMs = spec.timeoutMs ?? 10_000;
  const started = performance.now();
  const deadline = started + spec.seconds * 1000;
  const stats = new Map();
  const statsOf = (label) => {
    let s = stats.get(label);
    if (!s) stats.set(label, (s = { latencies: [], statuses: {}, socketErrors: 0, timeouts: 0 }));
    return s;
  };
  const completedPerSecond = [];

  const connection = async (flow) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      while (performance.now() < deadline) {
        const captured = {};
        for (const step of flow.steps) {
          if (performance.now() >= deadline) break;
          const values = { ...captured, u: uniqueValue(), ip: clientAddress() };
          const t0 = performance.now();
          const result = await send(agent, target, step, values, timeoutMs);
          const ms = performance.now() - t0;
          const s = statsOf(step.label);
          const second = Math.floor((performance.now() - started) / 1000);
          completedPerSecond[second] = (completedPerSecond[second] ?? 0) + 1;
          if (result.error === "timeout") {
            s.timeouts++;
            break;
          }
          if (result.error) {
            s.socketErrors++;
            break;
          }
          s.latencies.push(ms);
          s.statuses[result.status] = (s.statuses[result.status] ?? 0) + 1;
          if (step.capture) {
            let json;
            try {
              json = JSON.parse(result.body.toString("utf8"));
            } catch {
              json = undefined;
            }
            let complete = true;
            for (const [name, field] of Object.entries(step.capture)) {
              const value = json?.[field];
              if (value === undefined || value === null) complete = false;
              else captured[name] = value;
            }
            if (!complete) break;
          }
        }
      }
    } finally {
      agent.destroy();
    }
  };

  const workers = [];
  for (const flow of spec.flows) {
    for (let i = 0; i < flow.connections; i++) workers.push(connection(flow));
  }
  await Promise.all(workers);
  const byLabel = {};
  for (const [label, s] of stats) {
    const sorted = Float64Array.from(s.latencies).sort();
    byLabel[label] = {
      count: s.latencies.length,
      statuses: s.statuses,
      socketErrors: s.socketErrors,
      timeouts: s.timeouts,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted.length ? sorted[sorted.length - 1] : Number.NaN,
    };
  }
  return {
    seconds: (performance.now() - started) / 1000,
    byLabel,
    completedPerSecond: Array.from(completedPerSecond, (n) => n ?? 0),
  };
}
