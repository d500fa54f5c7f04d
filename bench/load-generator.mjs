// The bench's load generator: a child process that runs autocannon (as a library) once per message
// from the bench and answers with its summary. One process serves the whole run, so a load costs no
// process start (~0.4 s of node + autocannon before each load with the CLI), and many short loads
// can alternate. Plain JavaScript, so it starts without a TypeScript loader.
//
// Message in:  { url, connections, seconds, amount?, timeoutSeconds?, method?, headers?, body?, vary? }
//              (the bench checks url is 127.0.0.1; with `amount`, that many requests instead of `seconds`)
//              or { mixed: <spec> }: a mixed-traffic load (see mixed-load.mjs)
// Message out: { requests, seconds, p50Ms, p99Ms, errors, non2xx, statuses } or { mixed: <result> } or { error }
//
// `vary` makes each request distinct, for routes that refuse repeats:
//   clientAddressHeader: a header (e.g. x-forwarded-for) set to a new IPv4 address per request, so a
//     per-client rate limit sees many clients — only for a server that trusts that header (TRUST_PROXY);
//   uniqueToken: every occurrence of this text in the body is replaced by a value unique in this
//     process (e.g. a new email address per sign-up).
import autocannon from "autocannon";
import { runMixed, uniqueValue, clientAddress } from "./mixed-load.mjs";

process.on("disconnect", () => process.exit(0));
process.on("message", (message) => {
  if (message.mixed !== undefined) {
    runMixed(message.mixed).then(
      (result) => process.send({ mixed: result }),
      (error) => process.send({ error: String(error?.message ?? error) }),
    );
    return;
  }
  const { url, connections, seconds, amount, timeoutSeconds, method, headers, body, vary } = message;
  const options = { url, connections, duration: seconds, timeout: timeoutSeconds ?? 10 };
  if (amount !== undefined) options.amount = amount;
  // autocannon takes a key that is present but undefined as the value (an undefined method fails).
  if (method !== undefined) options.method = method;
  if (headers !== undefined) options.headers = headers;
  if (body !== undefined) options.body = body;
  if (vary !== undefined) options.requests = [{ setupRequest: varied(vary) }];
  try {
    run(options);
  } catch (error) {
    process.send({ error: String(error?.message ?? error) });
  }
});

function varied({ clientAddressHeader, uniqueToken }) {
  return (request) => {
    const n = uniqueValue();
    const headers = { ...request.headers };
    if (clientAddressHeader) headers[clientAddressHeader] = clientAddress();
    const body =
      uniqueToken && typeof request.body === "string" ? request.body.replaceAll(uniqueToken, String(n)) : request.body;
    return { ...request, headers, body };
  };
}

function run(options) {
  autocannon(options, (error, result) => {
    if (error) {
      process.send({ error: String(error?.message ?? error) });
      return;
    }
    process.send({
      requests: result.requests.total,
      seconds: result.duration,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      errors: result.errors + result.timeouts,
      non2xx: result.non2xx,
      statuses: Object.fromEntries(
        Object.entries(result.statusCodeStats ?? {}).map(([code, stats]) => [code, stats.count]),
      ),
    });
  });
}
