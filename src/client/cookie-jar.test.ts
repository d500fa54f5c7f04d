import { afterEach, describe, expect, it, vi } from "vitest";
import { createCookieJar } from "./cookie-jar.js";

const api = new URL("https://api.example.com/api/auth/sign-in/email");
const at = (path: string, origin = "https://api.example.com") => new URL(path, origin);

afterEach(() => vi.useRealTimers());

describe("createCookieJar", () => {
  it("sends back what Set-Cookie set, for the paths it covers", () => {
    const jar = createCookieJar();
    jar.store(api, ["sv.session_token=abc.def; Path=/; HttpOnly; SameSite=Lax", "scoped=1; Path=/api/v1"]);
    expect(jar.cookieHeader(at("/api/v1/me"))).toBe("scoped=1; sv.session_token=abc.def");
    expect(jar.cookieHeader(at("/api/v10"))).toBe("sv.session_token=abc.def");
    expect(jar.cookieHeader(at("/health"))).toBe("sv.session_token=abc.def");
  });

  it("takes a cookie without a Path for the directory of the request that set it", () => {
    const jar = createCookieJar();
    jar.store(api, ["a=1"]);
    expect(jar.cookieHeader(at("/api/auth/sign-in/social"))).toBe("a=1");
    expect(jar.cookieHeader(at("/api/auth/get-session"))).toBeUndefined();
  });

  it("replaces a cookie of the same name, domain and path, and deletes it on Max-Age=0 or a past Expires", () => {
    const jar = createCookieJar();
    jar.store(api, ["a=1; Path=/", "b=2; Path=/"]);
    jar.store(api, ["a=3; Path=/"]);
    expect(jar.cookieHeader(at("/"))).toBe("a=3; b=2");
    jar.store(api, ["a=; Max-Age=0; Path=/", "b=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/"]);
    expect(jar.cookieHeader(at("/"))).toBeUndefined();
  });

  it("forgets a cookie once it expires; Max-Age wins over Expires", () => {
    vi.useFakeTimers({ now: new Date("2030-01-01T00:00:00Z") });
    const jar = createCookieJar();
    jar.store(api, [
      "short=1; Max-Age=60; Expires=Wed, 01 Jan 2031 00:00:00 GMT; Path=/",
      "long=2; Expires=Wed, 01 Jan 2031 00:00:00 GMT; Path=/",
    ]);
    expect(jar.cookieHeader(at("/"))).toBe("short=1; long=2");
    vi.advanceTimersByTime(61_000);
    expect(jar.cookieHeader(at("/"))).toBe("long=2");
  });

  it("keeps host-only cookies to their host; a Domain cookie covers subdomains", () => {
    const jar = createCookieJar();
    jar.store(api, ["host=1; Path=/", "shared=2; Domain=example.com; Path=/"]);
    expect(jar.cookieHeader(at("/", "https://api.example.com"))).toBe("host=1; shared=2");
    expect(jar.cookieHeader(at("/", "https://app.example.com"))).toBe("shared=2");
    expect(jar.cookieHeader(at("/", "https://example.org"))).toBeUndefined();
  });

  it("refuses a Domain the host is not in, and a bare top-level one", () => {
    const jar = createCookieJar();
    jar.store(api, [
      "other=1; Domain=example.org; Path=/",
      "tld=2; Domain=com; Path=/",
      "self=3; Domain=api.example.com; Path=/",
    ]);
    expect(jar.cookieHeader(at("/"))).toBe("self=3");
  });

  it("sends Secure cookies over https and to loopback hosts only", () => {
    const jar = createCookieJar();
    jar.store(new URL("http://127.0.0.1:3000/"), ["__Secure-sv.session_token=t; Secure; Path=/"]);
    expect(jar.cookieHeader(new URL("http://127.0.0.1:3000/api/v1/me"))).toBe("__Secure-sv.session_token=t");
    jar.store(new URL("https://api.example.com/"), ["s=1; Secure; Path=/"]);
    expect(jar.cookieHeader(new URL("http://api.example.com/"))).toBeUndefined();
    expect(jar.cookieHeader(new URL("https://api.example.com/"))).toBe("s=1");
  });

  it("ignores lines that are not cookies, and clear() forgets everything", () => {
    const jar = createCookieJar();
    jar.store(api, ["novalue", "=nameless", "ok=1; Path=/"]);
    expect(jar.cookieHeader(at("/"))).toBe("ok=1");
    jar.clear();
    expect(jar.cookieHeader(at("/"))).toBeUndefined();
  });
});
