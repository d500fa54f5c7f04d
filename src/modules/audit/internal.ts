/**
 * What the audit verbs share about places: the name a place is reported under, and the rule that an
 * audit read or maintenance step does not quietly skip a database that could not answer.
 */
import { CommonErrors } from "../../errors.js";
import type { Everywhere, Place } from "../../db/module.js";

/**
 * The name results report a place under (`SealResult.databases`, `dropped[].database`): the
 * platform's places are its database names, the same ones `missing` reports.
 */
export const placeName = (place: Place): string => String(place);

/**
 * Throws the "retry shortly" error of the first database that could not answer. An audit page, an
 * export, a verification or a retention run that left a database out would look complete and be
 * wrong; the caller retries instead.
 */
export function requireComplete(missing: Everywhere<unknown>["missing"]): void {
  const [gap] = missing;
  if (!gap) return;
  // The reason is the code of a 503 error (the platform reports only those as missing).
  const thrower = CommonErrors[gap.reason as keyof typeof CommonErrors] ?? CommonErrors.DATABASE_UNAVAILABLE;
  throw thrower({ database: gap.database });
}
