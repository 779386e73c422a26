/**
 * Programme statistics of the screening workflow: exams by status, the L2 backlog against the 15-day target,
 * per-reader volume, recall rate, L1/L2 discordance and AI-versus-final agreement. Doctors see their care teams'
 * exams; admins the whole programme, and never a patient name.
 */
import { sql, type SQL } from "drizzle-orm";
import type { Actor } from "../accounts/actor";
import { rowsOf } from "../audit/audit.server";
import { db } from "../db/db.server";
import { listScope } from "../policy/policy.server";
import { EXAM_STATUSES, type ExamStatus } from "./workflow";

import { L2_TARGET_DAYS } from "./workflow";

export { L2_TARGET_DAYS };
/** The AI's exam score from which the AI is counted as "recall" when compared with the final result. */
export const AI_POSITIVE = 0.5;

export interface ProgrammeStats {
  byStatus: { status: ExamStatus; count: number }[];
  backlog: {
    count: number;
    overdue: number;
    oldestDays: number | null;
    buckets: { label: "0–7" | "8–15" | ">15"; count: number }[];
    /** The oldest waits; `patientName` only for doctors (their own care teams). */
    oldest: { examId: string; date: string; days: number; patientName: string | null }[];
  };
  perReader: { readerId: string; name: string; first: number; workup: number; second: number; arbitration: number }[];
  finals: { total: number; recall: number; technicalRecall: number; recallRate: number | null };
  discordance: { pairs: number; discordant: number; rate: number | null };
  ai: { exams: number; agree: number; rate: number | null; aiRecallFinalNormal: number; aiNormalFinalRecall: number };
}

const n = (v: unknown) => Number(v ?? 0);
const rate = (a: number, b: number) => (b > 0 ? a / b : null);

export async function programmeStats(actor: Actor, now = new Date()): Promise<ProgrammeStats> {
  // The exams in scope, as the policy says: a doctor's care teams, or (admins) the whole programme without names.
  const list = listScope(actor, "programme.stats");
  const doctor = list.kind === "careTeam";
  const scope: SQL =
    list.kind === "careTeam"
      ? sql`exists (select 1 from care_team ct where ct.patient_id = e.patient_id and ct.doctor_id = ${list.doctorId})`
      : list.kind === "directory"
        ? sql`true`
        : sql`false`;

  const statusRows = rowsOf<{ status: ExamStatus; count: string }>(
    await db.execute(sql`select e.status, count(*) as count from exams e where ${scope} group by e.status`),
  );
  const counts = new Map(statusRows.map((r) => [r.status, n(r.count)]));
  const byStatus = EXAM_STATUSES.map((status) => ({ status, count: counts.get(status) ?? 0 }));

  const target = new Date(now.getTime() - L2_TARGET_DAYS * 86_400_000);
  const week = new Date(now.getTime() - 7 * 86_400_000);
  const [b] = rowsOf<{ count: string; overdue: string; recent: string; oldest: Date | string | null }>(
    await db.execute(sql`select count(*) as count,
        count(*) filter (where e.status_since < ${target.toISOString()}::timestamptz) as overdue,
        count(*) filter (where e.status_since >= ${week.toISOString()}::timestamptz) as recent,
        min(e.status_since) as oldest
      from exams e where e.status in ('awaiting_second_reading', 'awaiting_arbitration') and ${scope}`),
  );
  const days = (d: Date | string) => Math.floor((now.getTime() - new Date(d).getTime()) / 86_400_000);
  const oldestRows = rowsOf<{ id: string; date: string; status_since: Date | string; display_name: string }>(
    await db.execute(sql`select e.id, e.date, e.status_since, p.display_name from exams e join patients p on p.id = e.patient_id
      where e.status in ('awaiting_second_reading', 'awaiting_arbitration') and ${scope}
      order by e.status_since asc limit 10`),
  );
  const backlogCount = n(b?.count);
  const overdue = n(b?.overdue);
  const recent = n(b?.recent);

  const readerRows = rowsOf<{ reader_id: string; name: string; kind: string; count: string }>(
    await db.execute(sql`select r.reader_id, u.name, r.kind, count(*) as count from readings r
      join exams e on e.id = r.exam_id join users u on u.id = r.reader_id
      where ${scope} group by r.reader_id, u.name, r.kind order by u.name`),
  );
  const readers = new Map<string, ProgrammeStats["perReader"][number]>();
  for (const r of readerRows) {
    const entry = readers.get(r.reader_id) ?? { readerId: r.reader_id, name: r.name, first: 0, workup: 0, second: 0, arbitration: 0 };
    entry[r.kind as "first" | "workup" | "second" | "arbitration"] = n(r.count);
    readers.set(r.reader_id, entry);
  }

  const total = ["final_normal", "recall", "technical_recall"].reduce((s, k) => s + (counts.get(k as ExamStatus) ?? 0), 0);
  const recall = counts.get("recall") ?? 0;
  const technicalRecall = counts.get("technical_recall") ?? 0;

  // L1's conclusion (after any work-up) against L2: "normal" = ACR 1 or 2 on both breasts and readable images.
  const normal = (r: string) =>
    sql.raw(`(coalesce(${r}.acr_right in (1, 2) and ${r}.acr_left in (1, 2), false) and not ${r}.technically_inadequate)`);
  const [d] = rowsOf<{ pairs: string; discordant: string }>(
    await db.execute(sql`select count(*) as pairs,
        count(*) filter (where ${normal("l1")} <> ${normal("l2")}) as discordant
      from readings l2
      join exams e on e.id = l2.exam_id
      join lateral (select * from readings x where x.exam_id = l2.exam_id and x.kind in ('first', 'workup')
        order by (x.kind = 'workup') desc limit 1) l1 on true
      where l2.kind = 'second' and ${scope}`),
  );

  const [a] = rowsOf<{ exams: string; agree: string; ai_recall_normal: string; ai_normal_recall: string }>(
    await db.execute(sql`select count(*) as exams,
        count(*) filter (where (s.score >= ${AI_POSITIVE}) = (s.status = 'recall')) as agree,
        count(*) filter (where s.score >= ${AI_POSITIVE} and s.status = 'final_normal') as ai_recall_normal,
        count(*) filter (where s.score < ${AI_POSITIVE} and s.status = 'recall') as ai_normal_recall
      from (select e.id, e.status, max(pr.probability) as score from exams e
        join images i on i.exam_id = e.id and i.erased_at is null
        join predictions pr on pr.image_id = i.id and pr.erased_at is null
        where e.status in ('final_normal', 'recall') and ${scope}
        group by e.id, e.status) s`),
  );

  return {
    byStatus,
    backlog: {
      count: backlogCount,
      overdue,
      oldestDays: b?.oldest ? days(b.oldest) : null,
      buckets: [
        { label: "0–7", count: recent },
        { label: "8–15", count: backlogCount - recent - overdue },
        { label: ">15", count: overdue },
      ],
      oldest: oldestRows.map((r) => ({ examId: r.id, date: r.date, days: days(r.status_since), patientName: doctor ? r.display_name : null })),
    },
    perReader: [...readers.values()],
    finals: { total, recall, technicalRecall, recallRate: rate(recall, total) },
    discordance: { pairs: n(d?.pairs), discordant: n(d?.discordant), rate: rate(n(d?.discordant), n(d?.pairs)) },
    ai: {
      exams: n(a?.exams),
      agree: n(a?.agree),
      rate: rate(n(a?.agree), n(a?.exams)),
      aiRecallFinalNormal: n(a?.ai_recall_normal),
      aiNormalFinalRecall: n(a?.ai_normal_recall),
    },
  };
}
