/**
 * The start-up banner: where the API, its docs and the mail viewer are, for the person who ran
 * `npm start`. It goes to stderr, never stdout: stdout carries only log lines, which a log shipper
 * (or `jq`) reads as one JSON object per line.
 */
export interface BannerInfo {
  /** Start-up time, already formatted ("2.4"). */
  seconds: string;
  publicUrl: string;
  /** The embedded PostgreSQL's data directory, when it runs one. */
  embeddedDataDir?: string;
  /** `/dev/mail` is served (development transport). */
  mailViewer: boolean;
  /** EMAIL_TRANSPORT=log: nothing is delivered and verification is off. */
  mailNotDelivered: boolean;
}

export function startupBanner(info: BannerInfo): string {
  const base = info.publicUrl;
  return `${[
    "",
    `  sv-sdk is up in ${info.seconds}s${info.embeddedDataDir ? ` (embedded PostgreSQL in ${info.embeddedDataDir}/postgres)` : ""}`,
    `  API      ${base}/api/v1`,
    `  Auth     ${base}/api/auth`,
    `  Docs     ${base}/docs`,
    ...(info.mailViewer ? [`  Mail     ${base}/dev/mail`] : []),
    ...(info.mailNotDelivered ? ["  Mail     not delivered (EMAIL_TRANSPORT=log); email verification is off"] : []),
    `  OpenAPI  ${base}/openapi.json`,
    `  Ready    ${base}/ready`,
    "",
  ].join("\n")}\n`;
}

/** Writes the banner to stderr (or `out`). */
export function writeBanner(info: BannerInfo, out: { write(text: string): unknown } = process.stderr): void {
  out.write(startupBanner(info));
}
