/**
 * npm run user:create -- --role admin --email ops@hospital.fr [--name "…"] [--password …]
 * Creates an account on the configured database (DATABASE_URL, or the embedded one under DATA_DIR). Without
 * --password, a strong one is generated and printed once. Recorded in the audit trail as a command-line action.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { newAccountSchema } from "../app/accounts/account-forms";
import { createUser } from "../app/accounts/users.server";
import { record } from "../app/audit/audit.server";
import { connection } from "../app/db/db.server";
import { parseWith } from "../app/http/validation.server";

const { values } = parseArgs({
  options: {
    role: { type: "string" },
    email: { type: "string" },
    name: { type: "string" },
    password: { type: "string" },
  },
});

const password = values.password ?? randomBytes(18).toString("base64url");
const parsed = parseWith(newAccountSchema, {
  role: values.role,
  email: values.email,
  name: values.name ?? values.email?.split("@")[0],
  password,
});
if (!parsed.ok) {
  console.error("Usage: npm run user:create -- --role admin|doctor|patient|researcher --email <e-mail> [--name <name>] [--password <password>]");
  for (const [field, message] of Object.entries(parsed.errors)) console.error(`  ${field}: ${message}`);
  process.exit(2);
}
try {
  const { id } = await createUser(parsed.data);
  await record({
    actor: null,
    action: "account.create",
    outcome: "allowed",
    resource: { type: "account", id },
    reason: "command line (npm run user:create)",
    info: { requestId: null, ip: null, userAgent: "cli" },
  });
  console.log(`Created ${parsed.data.role} ${parsed.data.email.toLowerCase()} (${id}).`);
  if (!values.password) console.log(`Password (shown once): ${password}`);
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
} finally {
  await connection.close();
}
