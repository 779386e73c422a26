/**
 * npm run keys:rotate [-- --rewrap-only]
 * Makes a new master key active (in the key file) and re-wraps every image's data key under it. The encrypted
 * objects are not touched. Resumable and idempotent: run it again after an interruption; it only re-wraps what is
 * still under an older key, and prints the counts. With keys from NEXUS_MASTER_KEYS, add the new key to the
 * variable yourself (the command says how), restart, then run with --rewrap-only.
 * Run it with the server stopped (embedded database) or restart the servers right after (they read keys at start).
 */
import { parseArgs } from "node:util";
import { record } from "../app/audit/audit.server";
import { config } from "../app/config.server";
import { connection } from "../app/db/db.server";
import { vault } from "../app/vault/instance.server";
import { KeyringError, loadKeyring, rotateMasterKey } from "../app/vault/keys.server";

const { values } = parseArgs({ options: { "rewrap-only": { type: "boolean", default: false } } });
const info = { requestId: null, ip: null, userAgent: "cli" };

try {
  if (!values["rewrap-only"]) {
    const rotated = rotateMasterKey({ env: process.env, dataDir: config.DATA_DIR });
    console.log(`New active master key "${rotated.keyId}" added to ${rotated.path} (older keys kept for unwrapping).`);
  }
  const keyring = loadKeyring({ env: process.env, dataDir: config.DATA_DIR });
  vault.useKeyring(keyring);
  const counts = await vault.rewrapAll();
  console.log(`Re-wrapped ${counts.rewrapped} data key(s) under "${keyring.activeId}"; ${counts.alreadyActive} already were.`);
  if (counts.failed.length > 0) {
    console.error(`${counts.failed.length} key(s) could not be unwrapped (tampered, or master key missing): ${counts.failed.join(", ")}`);
    process.exitCode = 1;
  }
  await record({
    actor: null,
    action: "vault.rotate",
    outcome: "allowed",
    reason: `active key ${keyring.activeId}; rewrapped ${counts.rewrapped}; already ${counts.alreadyActive}; failed ${counts.failed.length}`,
    info,
  });
} catch (err) {
  console.error(err instanceof KeyringError ? `Key rotation refused: ${err.message}` : err);
  await record({ actor: null, action: "vault.rotate", outcome: "error", reason: String((err as Error).message), info }).catch(() => {});
  process.exitCode = 1;
} finally {
  await connection.close();
}
