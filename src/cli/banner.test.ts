import { afterEach, describe, expect, it, vi } from "vitest";
import { startupBanner, writeBanner, type BannerInfo } from "./banner.js";

const info: BannerInfo = {
  seconds: "1.2",
  publicUrl: "http://localhost:3000",
  embeddedDataDir: ".data",
  mailViewer: true,
  mailNotDelivered: false,
};

describe("start-up banner", () => {
  afterEach(() => vi.restoreAllMocks());

  it("names every URL a person needs", () => {
    const text = startupBanner(info);
    expect(text).toContain("sv-sdk is up in 1.2s (embedded PostgreSQL in .data/postgres)");
    for (const path of ["/api/v1", "/api/auth", "/docs", "/dev/mail", "/openapi.json", "/ready"])
      expect(text).toContain(`http://localhost:3000${path}`);
    expect(startupBanner({ ...info, mailViewer: false, mailNotDelivered: true })).toContain(
      "not delivered (EMAIL_TRANSPORT=log)",
    );
  });

  it("goes to stderr, never to stdout (stdout is the JSON log stream)", () => {
    const stdout = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    writeBanner(info);
    expect(stdout).not.toHaveBeenCalled();
    expect(stderr).toHaveBeenCalledWith(startupBanner(info));
  });
});
