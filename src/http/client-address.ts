/**
 * The client's address, for rate limits and the audit trail. A client can write anything into
 * `X-Forwarded-For`; only what the operator's own proxies appended is believed. Proxies append the
 * address they received a connection from, so the trustworthy part of the header is at its right end:
 * the client is the first address, reading from the right, that is not one of our proxies.
 *
 * - `false`: no proxy; the socket's address.
 * - a number N: N proxies in front (each appends one entry): the N-th entry from the right.
 * - a list of proxy addresses or CIDR blocks: walk from the socket's address leftwards while the
 *   address is one of ours.
 */
import { BlockList, isIP } from "node:net";

export type TrustProxy = false | number | readonly string[];

/** `TRUST_PROXY` as operators write it: `0`, a hop count, or a comma-separated list of addresses/CIDRs. */
export function parseTrustProxy(value: string | undefined): TrustProxy {
  const text = (value ?? "").trim();
  if (text === "" || text === "0" || text === "false") return false;
  if (/^\d+$/.test(text)) return Number(text);
  const entries = text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const entry of entries) {
    const [address, bits] = entry.split("/");
    if (!isIP(address ?? "") || (bits !== undefined && !/^\d{1,3}$/.test(bits))) {
      throw new Error(
        `TRUST_PROXY: '${entry}' is not an IP address or CIDR block (use a hop count, or addresses like 10.0.0.1,10.0.0.0/8)`,
      );
    }
  }
  return entries;
}

function blockListOf(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, bits] = entry.split("/") as [string, string | undefined];
    const type = isIP(address) === 6 ? "ipv6" : "ipv4";
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return list;
}

/** A resolver for one trust setting (the block list is built once). */
export function clientAddressResolver(
  trust: TrustProxy,
): (socket: string | undefined, forwardedFor: string | undefined) => string | undefined {
  if (trust === false || trust === 0) return (socket) => socket;
  const trusted = typeof trust === "number" ? undefined : blockListOf(trust);
  const isTrusted = (address: string) => {
    const plain = address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
    const type = isIP(plain);
    return type !== 0 && trusted!.check(plain, type === 6 ? "ipv6" : "ipv4");
  };
  return (socket, forwardedFor) => {
    const hops = (forwardedFor ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    if (typeof trust === "number") {
      // The entry our outermost proxy appended: N from the right. Fewer entries than proxies means the
      // request did not come through all of them; the leftmost is the best we have.
      return hops.length === 0 ? socket : hops[Math.max(0, hops.length - trust)];
    }
    if (!socket || !isTrusted(socket)) return socket;
    for (let i = hops.length - 1; i >= 0; i--) {
      if (!isTrusted(hops[i]!)) return hops[i];
    }
    return hops[0] ?? socket;
  };
}
