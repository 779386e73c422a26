/**
 * npm run bench:worklists — the first- and second-reading worklists with 100,000 exams in PostgreSQL.
 *
 *   npm run bench:worklists                               100,000 exams in a throwaway database, dropped at the end
 *   npm run bench:worklists -- --exams 20000 --keep       fewer exams; keep the database (its URL is printed)
 *
 * The server is BENCH_ADMIN_URL, else DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres; the script
 * creates `nexus_bench_worklists_<time>` there (the migrations run on it) and drops it afterwards.
 *
 * Data (worst case for the queries: every radiologist is in the care team of every patient, so nothing is filtered
 * out early): 8 radiologists, 25,000 patients (2 % without live care consent), 100,000 exams over 60 days with
 * four views each (5 % missing one), statuses as a running programme has them (≈ 70 % final, 10 % awaiting L1,
 * 3 % immediate work-up, 15 % awaiting L2, 2 % arbitration), the readings that got them there.
 * Measures the app's own functions (firstReadingWorklist, secondReadingWorklist: the 100 oldest, completeness per
 * exam) as one of the radiologists: p50/p95/max over the samples, and the machine's load average beside them
 * (on a shared machine the load, not the plan, sets the tail: keep the database with --keep and EXPLAIN by hand).
 * Goal: p95 ≤ 50 ms for each list.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { adminStatement, databaseUrl } from "./bench-servers";

const { values: args } = parseArgs({
  options: {
    exams: { type: "string", default: "100000" },
    samples: { type: "string", default: "200" },
    keep: { type: "boolean", default: false },
  },
});
const EXAMS = Number(args.exams);
const PATIENTS = Math.max(1, Math.round(EXAMS / 4));
const DOCTORS = 8;
const SAMPLES = Number(args.samples);
const dbName = `nexus_bench_worklists_${Date.now().toString(36)}`;
const benchUrl = databaseUrl(dbName);

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function main() {
  await adminStatement(`create database "${dbName}"`);
  const dataDir = mkdtempSync(path.join(tmpdir(), "nexus-bench-worklists-"));
  process.env.DATABASE_URL = benchUrl;
  process.env.DATA_DIR = dataDir;
  process.env.NEXUS_DEMO = "0";
  const { connection } = await import("../app/db/db.server");
  const { firstReadingWorklist, secondReadingWorklist } = await import("../app/reading/readings.server");
  const client = new pg.Client({ connectionString: benchUrl });
  await client.connect();
  try {
    const t0 = performance.now();
    await client.query(`insert into users (email, name, role, password_hash)
      select 'reader' || g || '@bench.nexus', 'Dr Lecteur ' || g, 'doctor', 'x' from generate_series(1, ${DOCTORS}) g`);
    await client.query(`insert into patients (display_name, ipp, birth_date)
      select 'Patiente ' || g, 'IPP' || g, (date '1952-01-01' + (g % 8000))::text from generate_series(1, ${PATIENTS}) g`);
    await client.query(`insert into care_team (doctor_id, patient_id) select u.id, p.id from users u cross join patients p`);
    await client.query(`insert into consents (patient_id, purpose, granted) select id, 'care', random() > 0.02 from patients`);
    await client.query(`with p as (select id, row_number() over (order by id) as rn from patients),
        g as (select g, random() as r from generate_series(1, ${EXAMS}) g)
      insert into exams (patient_id, date, study_instance_uid, status, status_since)
      select p.id, (current_date - (g.g % 60))::text, '2.25.' || g.g,
        (case when g.r < 0.10 then 'awaiting_first_reading' when g.r < 0.13 then 'immediate_workup'
              when g.r < 0.28 then 'awaiting_second_reading' when g.r < 0.30 then 'awaiting_arbitration'
              when g.r < 0.90 then 'final_normal' when g.r < 0.97 then 'recall' else 'technical_recall' end)::exam_status,
        now() - (random() * interval '60 days')
      from g join p on p.rn = 1 + (g.g % ${PATIENTS})`);
    await client.query(`insert into images (id, patient_id, content_type, size, sha256, storage_key, ciphertext_size, format_version, exam_id, laterality, view)
      select gen_random_uuid(), e.patient_id, 'application/dicom', 1, '0', 'bench/' || gen_random_uuid(), 1, 1, e.id, v.l, v.v
      from exams e cross join (values ('R', 'CC'), ('L', 'CC'), ('R', 'MLO'), ('L', 'MLO')) as v(l, v)
      where not (v.l = 'L' and v.v = 'MLO' and abs(hashtext(e.id::text)) % 20 = 0)`);
    // Readings: L1 by one reader for every exam past L1; L2 by the next reader for the exams past L2.
    const readers = `(array(select id from users order by email))`;
    await client.query(`insert into readings (exam_id, patient_id, kind, reader_id, acr_right, acr_left, density_right, density_left, exam_status)
      select e.id, e.patient_id, 'first', ${readers}[1 + abs(hashtext(e.id::text)) % ${DOCTORS}], 1, 2, 'B', 'B', e.status
      from exams e where e.status <> 'awaiting_first_reading'`);
    await client.query(`insert into readings (exam_id, patient_id, kind, reader_id, acr_right, acr_left, density_right, density_left, exam_status)
      select e.id, e.patient_id, 'second', ${readers}[1 + (abs(hashtext(e.id::text)) + 1) % ${DOCTORS}], 1, 1, 'B', 'B', e.status
      from exams e where e.status in ('final_normal', 'recall', 'awaiting_arbitration')`);
    await client.query("vacuum analyze");
    const counts = (await client.query(`select (select count(*) from exams) as exams, (select count(*) from images) as images,
      (select count(*) from readings) as readings, (select count(*) from care_team) as care_team`)).rows[0];
    console.log(`loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${JSON.stringify(counts)}`);

    const [reader] = (await client.query(`select id from users order by email limit 1`)).rows as { id: string }[];
    const lists = { "first-reading": () => firstReadingWorklist(reader!.id), "second-reading": () => secondReadingWorklist(reader!.id) };
    let ok = true;
    for (const [name, run] of Object.entries(lists)) {
      for (let i = 0; i < 10; i++) await run(); // warm-up
      const times: number[] = [];
      let size = 0;
      for (let i = 0; i < SAMPLES; i++) {
        const t = performance.now();
        size = (await run()).exams.length;
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      const p95 = pct(times, 95);
      ok &&= p95 <= 50;
      console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(" ")} on ${cpus().length} cores`);
      console.log(`${name}: ${size} exams listed — p50 ${pct(times, 50).toFixed(1)} ms, p95 ${p95.toFixed(1)} ms, max ${times.at(-1)!.toFixed(1)} ms (${SAMPLES} samples) ${p95 <= 50 ? "✓" : "✗ goal p95 ≤ 50 ms"}`);
    }
    if (!ok) process.exitCode = 1;
  } finally {
    await client.end();
    await connection.close();
    rmSync(dataDir, { recursive: true, force: true });
    if (args.keep) console.log(`kept: ${benchUrl}`);
    else await adminStatement(`drop database "${dbName}"`);
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
