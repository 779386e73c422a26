/**
 * npm run db:migrate — applies the pending migrations of drizzle/. Run it as the database owner before starting
 * servers that run as `nexus_app` with NEXUS_MIGRATE=0 (README, "Audit trail").
 */
process.env.NEXUS_MIGRATE = "1";
const { connection, migrations } = await import("../app/db/db.server");
await connection.close();
const all = migrations();
console.log(`Database schema up to date on ${connection.kind}: ${all.length} migrations, the last ${all.at(-1)?.tag}.`);
export {};
