// The bench's load generator: a child process that runs autocannon (as a library) once per message
// from the bench and answers with its summary. One process serves the whole run, so a load costs no
// process start (~0.4 s of node + autocannon before each load with the CLI), and many short loads
// can alternate. Plain JavaScript, so it starts without a TypeScript loader.
//
// Message in:  { url, connections, seconds, method?, headers?, body? }   (the bench checks url is 127.0.0.1)
// Message out: { requests, seconds, p50Ms, p99Ms, errors, non2xx } or { error }
import autocannon from "autocannon";

process.on("disconnect", () => process.exit(0));
process.on("message", (message) => {
  const { url, connections, seconds, method, headers, body } = message;
  const options = { url, connections, duration: seconds, timeout: 10 };
  // autocannon takes a key that is present but undefined as the value (an undefined method fails).
  if (method !== undefined) options.method = method;
  if (headers !== undefined) options.headers = headers;
  if (body !== undefined) options.body = body;
  try {
    run(options);
  } catch (error) {
    process.send({ error: String(error?.message ?? error) });
  }
});

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
    });
  });
}
