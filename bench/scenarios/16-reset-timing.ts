/**
 * A password-reset request must not tell whether the email has an account (issue 14): the answer
 * for a known email has to take as long as the one for an unknown email. Both are loaded one request
 * at a time (an observer times single requests), alternating in ABBA rounds so the machine's drift
 * falls on both alike; the row is the ratio of their median latencies, target within 5 %.
 * Rate limits stay on; each request comes from its own address through a trusted proxy header.
 */
import { createApp } from "../../src/app.js";
import { createSdk } from "../../src/index.js";
import { median } from "../harness.js";
import type { Row, Scenario } from "../types.js";

const scenario: Scenario = async (ctx) => {
  const database = await ctx.freshDatabase();
  const sdk = createSdk({ databaseUrl: database.url, environment: "test" });
  try {
    const known = `known-${crypto.randomUUID()}@example.test`;
    await sdk.auth.createUser({
      email: known,
      password: "correct horse battery staple",
      name: "Known",
      emailVerified: true,
    });
    const app = createApp(sdk, { logRequests: false, trustProxy: 1 });
    const server = await ctx.serve(app.fetch);
    try {
      const url = `${server.url}/api/auth/request-password-reset`;
      let address = 0;
      // One request at a time, as an observer times them; known and unknown strictly alternate, so
      // whatever one request leaves behind (its work after the answer) falls on both kinds alike.
      const ask = async (email: string): Promise<{ ms: number; ok: boolean }> => {
        address++;
        const started = performance.now();
        const response = await fetch(url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            origin: "http://localhost:3000",
            "x-forwarded-for": `10.${(address >> 16) & 255}.${(address >> 8) & 255}.${address & 255}`,
          },
          body: JSON.stringify({ email }),
        });
        await response.arrayBuffer();
        return { ms: performance.now() - started, ok: response.status === 200 };
      };
      for (let i = 0; i < 20; i++) await ask(known);
      const pairs = ctx.quick ? 100 : 600;
      const knownMs: number[] = [];
      const unknownMs: number[] = [];
      let failures = 0;
      for (let i = 0; i < pairs; i++) {
        const first = i % 2 === 0;
        for (const which of first ? ["known", "unknown"] : ["unknown", "known"]) {
          const result = await ask(which === "known" ? known : `nobody-${crypto.randomUUID()}@example.test`);
          if (!result.ok) failures++;
          (which === "known" ? knownMs : unknownMs).push(result.ms);
        }
      }
      const knownP50 = [median(knownMs)];
      const unknownP50 = [median(unknownMs)];
      const rounds = pairs;
      const perLoad = 2;
      const ratio = median(knownP50) / median(unknownP50);
      const row: Row = {
        scenario: "auth: password-reset request, known vs unknown email (p50 latency)",
        throughput: ratio,
        unit: "ratio",
        p50Ms: median(knownP50),
        target: "0.95-1.05",
        pass: ratio >= 0.95 && ratio <= 1.05 && failures === 0,
        note: `p50 known ${median(knownP50).toFixed(2)} ms vs unknown ${median(unknownP50).toFixed(2)} ms over ${rounds} alternating pairs (${perLoad} requests each); ${failures} failures`,
      };
      return [row];
    } finally {
      await server.close();
    }
  } finally {
    await sdk.close();
    await database.drop();
  }
};

export default scenario;
