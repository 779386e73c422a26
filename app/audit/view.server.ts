/**
 * What the admin audit pages show. Identifiers, roles, actions and outcomes — never medical content. The trail
 * itself holds none (no image, diagnosis or AI reading is ever recorded), and the pages join nothing: no patient
 * name is looked up. A patient acting on their own record appears as "a patient" with their account id, not by
 * name, here and in the exports (app/audit/export.server.ts `forAdmins`).
 */
import { desc, lt } from "drizzle-orm";
import { config } from "../config.server";
import { db } from "../db/db.server";
import { auditEvents } from "../db/schema";
import { listArchives } from "./archive.server";
import { latestChainCheck, verifyTail, type AuditEventRow } from "./audit.server";
import { GENESIS_HASH, chainHash } from "./chain.server";
import { forAdmins } from "./export.server";
import { toFhirAuditEvent } from "./fhir.server";
import { retention } from "./retention.server";

export interface EventView {
  id: number;
  at: string;
  actorId: string | null;
  actorRole: string | null;
  /** null for patients (shown as "a patient") and anonymous callers. */
  actorName: string | null;
  action: string;
  resourceType: string | null;
  resourceId: string | null;
  patientId: string | null;
  outcome: AuditEventRow["outcome"];
  reason: string | null;
  purpose: string | null;
  requestId: string | null;
}

export function eventView(row: AuditEventRow): EventView {
  return {
    id: row.id,
    at: row.at.toISOString(),
    actorId: row.actorId,
    actorRole: row.actorRole,
    actorName: row.actorRole === "patient" ? null : row.actorName,
    action: row.action,
    resourceType: row.resourceType,
    resourceId: row.resourceId,
    patientId: row.patientId,
    outcome: row.outcome,
    reason: row.reason,
    purpose: row.purpose,
    requestId: row.requestId,
  };
}

export interface EventDetail extends EventView {
  ip: string | null;
  userAgent: string | null;
  prevHash: string;
  hash: string;
  /** The row's hash matches its content. */
  hashOk: boolean;
  /** Its prev_hash is the previous row's hash (or the last archive seal's, or the genesis hash). */
  linked: boolean;
  fhir: string;
}

export async function eventDetail(row: AuditEventRow, site?: string): Promise<EventDetail> {
  const [previous] = await db
    .select({ hash: auditEvents.hash })
    .from(auditEvents)
    .where(lt(auditEvents.id, row.id))
    .orderBy(desc(auditEvents.id))
    .limit(1);
  const expectedPrev = previous?.hash ?? (await listArchives())[0]?.lastHash ?? GENESIS_HASH;
  const fhir = toFhirAuditEvent(forAdmins(row), { site });
  return {
    ...eventView(row),
    ip: row.ip,
    userAgent: row.userAgent,
    prevHash: row.prevHash,
    hash: row.hash,
    hashOk: row.hash === chainHash(row.prevHash, row),
    linked: row.prevHash === expectedPrev,
    fhir: JSON.stringify(fhir, null, 2),
  };
}

export interface ChainState {
  tail: { ok: boolean; checked: number; firstBrokenId?: number };
  lastCheck: { at: string; actorName: string | null; ok: boolean; checked: number | null; firstBrokenId: number | null } | null;
  archives: { count: number; last: { firstId: number; lastId: number; periodEnd: string; fileSha256: string; createdAt: string } | null };
  retentionDays: number;
}

/** The chain as the admin page shows it: the newest events checked now, the last full verification, the seals. */
export async function chainState(): Promise<ChainState> {
  const [tail, lastCheck, archives] = await Promise.all([verifyTail(200), latestChainCheck(), listArchives()]);
  const last = archives[0];
  return {
    tail,
    lastCheck: lastCheck && { ...lastCheck, at: lastCheck.at.toISOString() },
    archives: {
      count: archives.length,
      last: last
        ? {
            firstId: last.firstId,
            lastId: last.lastId,
            periodEnd: last.periodEnd.toISOString(),
            fileSha256: last.fileSha256,
            createdAt: last.createdAt.toISOString(),
          }
        : null,
    },
    retentionDays: retention.retentionDays,
  };
}

/** The observer site in FHIR exports: PUBLIC_URL's host when configured. */
export function fhirSite(): string | undefined {
  return config.PUBLIC_URL ? new URL(config.PUBLIC_URL).host : undefined;
}
