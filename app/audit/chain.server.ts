/**
 * The audit hash chain. Each row's hash is SHA-256 over the previous row's hash and the row's canonical JSON
 * (keys sorted, fixed field list, timestamps in ISO 8601 UTC). Verification walks the rows in id order.
 */
import { createHash } from "node:crypto";
import { GENESIS_HASH } from "../db/schema";
import type { Outcome } from "../vocabulary";

/** Every field that the hash covers, in a fixed order (the canonical JSON sorts keys anyway). */
export interface ChainedFields {
  id: number;
  /** A Date, or its ISO 8601 UTC form with milliseconds (what verification reads straight from SQL). */
  at: Date | string;
  actorId: string | null;
  actorRole: string | null;
  actorName: string | null;
  action: string;
  resourceType: string | null;
  resourceId: string | null;
  patientId: string | null;
  outcome: Outcome;
  reason: string | null;
  purpose: string | null;
  requestId: string | null;
  ip: string | null;
  userAgent: string | null;
}

/** JSON with object keys sorted recursively: the same value always gives the same bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value ?? null);
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** The hashed keys in canonical (sorted) order, computed once. */
const CHAINED_KEYS = (
  [
    "id",
    "at",
    "actorId",
    "actorRole",
    "actorName",
    "action",
    "resourceType",
    "resourceId",
    "patientId",
    "outcome",
    "reason",
    "purpose",
    "requestId",
    "ip",
    "userAgent",
  ] as const satisfies readonly (keyof ChainedFields)[]
).toSorted();
const KEY_JSON = CHAINED_KEYS.map((k) => `${JSON.stringify(k)}:`);

/**
 * The canonical JSON of a row's chained fields: exactly `canonicalJson()` of the field object, written without the
 * generic sort (verification hashes a million rows; chain.server.test.ts checks both agree).
 */
export function chainedJson(row: ChainedFields): string {
  const parts: string[] = [];
  for (let i = 0; i < CHAINED_KEYS.length; i++) {
    const value = row[CHAINED_KEYS[i]!];
    if (value === undefined) continue;
    parts.push(KEY_JSON[i]! + JSON.stringify(value instanceof Date ? value.toISOString() : value));
  }
  return `{${parts.join(",")}}`;
}

export function chainHash(prevHash: string, row: ChainedFields): string {
  return createHash("sha256").update(prevHash).update("\n").update(chainedJson(row)).digest("hex");
}

export { GENESIS_HASH };
