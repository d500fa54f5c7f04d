/**
 * A cookie jar for clients outside a browser (Node, Deno, Bun, a test): fetch there keeps no cookies,
 * so the session cookie sign-in sets would be lost. The jar keeps what `Set-Cookie` sets and sends
 * it back, as a browser would for these attributes: Domain, Path, Expires, Max-Age, Secure.
 *
 * Not a general-purpose store: there is no public-suffix list (a Domain attribute is accepted only
 * when it covers the host that set it and has a dot in it), and no SameSite (outside a browser there
 * is no other site to refuse). Bring your own `CookieJar` (e.g. over tough-cookie) for more.
 */
export interface CookieJar {
  /** The `Cookie` header a request to `url` carries, or undefined when no cookie applies. */
  cookieHeader(url: URL): string | undefined;
  /** Keeps the cookies a response to `url` set (its `Set-Cookie` lines, `headers.getSetCookie()`). */
  store(url: URL, setCookies: readonly string[]): void;
  /** Forgets every cookie. */
  clear(): void;
}

interface StoredCookie {
  name: string;
  value: string;
  domain: string;
  hostOnly: boolean;
  path: string;
  secure: boolean;
  /** Milliseconds since the epoch; undefined for a session cookie (kept as long as the jar). */
  expiresAt: number | undefined;
  created: number;
}

/** Browsers treat these as secure contexts, so `Secure` cookies travel to them over plain http. */
function isLoopback(host: string): boolean {
  return host === "localhost" || host.endsWith(".localhost") || /^127\.\d+\.\d+\.\d+$/.test(host) || host === "[::1]";
}

function isIpAddress(host: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(host) || host.startsWith("[");
}

/** RFC 6265 §5.1.3. */
function domainMatches(host: string, domain: string): boolean {
  return host === domain || (!isIpAddress(host) && host.endsWith(`.${domain}`));
}

/** RFC 6265 §5.1.4: the path of the request up to its last `/`, or `/`. */
function defaultPath(pathname: string): string {
  if (!pathname.startsWith("/")) return "/";
  const last = pathname.lastIndexOf("/");
  return last === 0 ? "/" : pathname.slice(0, last);
}

/** RFC 6265 §5.1.4. */
function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  return requestPath.startsWith(cookiePath) && (cookiePath.endsWith("/") || requestPath[cookiePath.length] === "/");
}

/** One `Set-Cookie` line as RFC 6265 §5.2 reads it; undefined when the jar must ignore it. */
function parseSetCookie(line: string, url: URL, now: number): StoredCookie | undefined {
  const [pair = "", ...attributes] = line.split(";");
  const at = pair.indexOf("=");
  if (at < 0) return undefined;
  const name = pair.slice(0, at).trim();
  if (!name) return undefined;
  const host = url.hostname.toLowerCase();
  const cookie: StoredCookie = {
    name,
    value: pair.slice(at + 1).trim(),
    domain: host,
    hostOnly: true,
    path: defaultPath(url.pathname),
    secure: false,
    expiresAt: undefined,
    created: now,
  };
  let maxAge: number | undefined;
  let expires: number | undefined;
  for (const attribute of attributes) {
    const eq = attribute.indexOf("=");
    const key = (eq < 0 ? attribute : attribute.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? "" : attribute.slice(eq + 1).trim();
    if (key === "max-age" && /^-?\d+$/.test(value)) maxAge = Number(value);
    else if (key === "expires") {
      const time = Date.parse(value);
      if (!Number.isNaN(time)) expires = time;
    } else if (key === "domain" && value) {
      const domain = value.replace(/^\./, "").toLowerCase();
      // A cookie for a domain the host is not in, or for a bare top-level label, is refused.
      if (!domainMatches(host, domain) || (!domain.includes(".") && domain !== host)) return undefined;
      cookie.domain = domain;
      cookie.hostOnly = domain === host;
    } else if (key === "path") cookie.path = value.startsWith("/") ? value : defaultPath(url.pathname);
    else if (key === "secure") cookie.secure = true;
  }
  // Max-Age wins over Expires (§5.3 step 3); zero or less means "delete now".
  cookie.expiresAt = maxAge !== undefined ? now + maxAge * 1000 : expires;
  return cookie;
}

/**
 * An in-memory cookie jar.
 *
 * @example
 * const cookies = createCookieJar();
 * const client = createClient("https://api.example.com", { origin: "https://app.example.com", cookies });
 * await client.auth.signIn.email({ email, password }); // the session cookie is kept in `cookies`
 * await client.api.api.v1.me.$get();                   // and sent back
 */
export function createCookieJar(): CookieJar {
  const cookies = new Map<string, StoredCookie>();
  const keyOf = (c: Pick<StoredCookie, "name" | "domain" | "path">) => `${c.domain};${c.path};${c.name}`;
  return {
    cookieHeader(url) {
      const now = Date.now();
      const host = url.hostname.toLowerCase();
      const secureChannel = url.protocol === "https:" || url.protocol === "wss:" || isLoopback(host);
      const matching: StoredCookie[] = [];
      for (const [key, cookie] of cookies) {
        if (cookie.expiresAt !== undefined && cookie.expiresAt <= now) {
          cookies.delete(key);
          continue;
        }
        if (cookie.hostOnly ? host !== cookie.domain : !domainMatches(host, cookie.domain)) continue;
        if (!pathMatches(url.pathname || "/", cookie.path)) continue;
        if (cookie.secure && !secureChannel) continue;
        matching.push(cookie);
      }
      if (matching.length === 0) return undefined;
      // §5.4: longer paths first, then the older cookie first.
      matching.sort((a, b) => b.path.length - a.path.length || a.created - b.created);
      return matching.map((c) => `${c.name}=${c.value}`).join("; ");
    },
    store(url, setCookies) {
      const now = Date.now();
      for (const line of setCookies) {
        const cookie = parseSetCookie(line, url, now);
        if (!cookie) continue;
        const key = keyOf(cookie);
        const previous = cookies.get(key);
        if (cookie.expiresAt !== undefined && cookie.expiresAt <= now) {
          cookies.delete(key);
          continue;
        }
        // A replaced cookie keeps its creation time (§5.3 step 11.3), hence its place in the header.
        cookies.set(key, previous ? { ...cookie, created: previous.created } : cookie);
      }
    },
    clear() {
      cookies.clear();
    },
  };
}
