/**
 * Master keys (key-encryption keys) and the wrapping of per-object data keys.
 *
 * Master keys come from, in order of precedence:
 *   1. `NEXUS_MASTER_KEYS=id1:base64key1,id2:base64key2` with `NEXUS_MASTER_KEY_ACTIVE=id` (default: the last one);
 *   2. a JSON key file `{ "active": "id", "keys": { "id": "base64key" } }` at `NEXUS_MASTER_KEY_FILE`, or else at
 *      `<dataDir>/master-keys.json`;
 *   3. only when `allowGenerate` is set (the embedded demo): a key file generated once at
 *      `<dataDir>/master-keys.json`, mode 0600, with a loud warning.
 *
 * A data key is wrapped with the active master key: AES-256-GCM, random 12-byte nonce, the object id as associated
 * data; wrapped = nonce || ciphertext || tag (60 bytes). The key id travels beside it (in the database).
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { DATA_KEY_LENGTH, IntegrityError } from "./format.server";

export const MASTER_KEY_LENGTH = 32;
export const KEY_FILE_NAME = "master-keys.json";
const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
const WRAPPED_LENGTH = NONCE_LENGTH + DATA_KEY_LENGTH + TAG_LENGTH;
/** Domain separation: a wrapped data key can never be confused with any other use of a master key. */
const WRAP_LABEL = Buffer.from("nexus-vault-data-key-v1\0", "utf8");

type Env = Readonly<Record<string, string | undefined>>;

export interface Keyring {
  /** Id of the key used for new wraps. */
  readonly activeId: string;
  /** All master keys by id: the active one and the older ones still needed to unwrap. */
  readonly keys: ReadonlyMap<string, Buffer>;
  /** Where the keys came from: rotation edits a file, never the environment. */
  readonly source: { kind: "env" } | { kind: "file"; path: string };
}

export interface LoadKeyringOptions {
  env: Env;
  /** Directory of the default key file; required unless the keys come from the environment or an explicit file. */
  dataDir?: string;
  /** Generate `<dataDir>/master-keys.json` when no key is configured (embedded demo / single machine only). */
  allowGenerate?: boolean;
}

export interface WrappedKey {
  wrappedKey: Buffer;
  keyId: string;
}

/** Configuration problems with master keys (missing, malformed, unknown id). Messages never contain key material. */
export class KeyringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyringError";
  }
}

interface KeyFile {
  active: string;
  keys: Record<string, string>;
}

/**
 * Loads and validates the master keyring (see the module comment for the sources and their precedence).
 * @throws KeyringError with a message naming the variable or file at fault.
 */
export function loadKeyring({ env, dataDir, allowGenerate = false }: LoadKeyringOptions): Keyring {
  const inline = env.NEXUS_MASTER_KEYS?.trim();
  if (inline) return keyringFromEnv(inline, env.NEXUS_MASTER_KEY_ACTIVE?.trim());
  const path = keyFilePath(env, dataDir);
  if (fileExists(path)) return keyringFromFile(path);
  if (env.NEXUS_MASTER_KEY_FILE?.trim()) {
    throw new KeyringError(`NEXUS_MASTER_KEY_FILE points to ${path}, which does not exist`);
  }
  if (!allowGenerate) {
    throw new KeyringError(
      `no master key configured: set NEXUS_MASTER_KEYS (id:base64key,…) or NEXUS_MASTER_KEY_FILE, or create ${path}`,
    );
  }
  generateKeyFile(path); // a concurrent process may win the race: then its file is the one to read
  return keyringFromFile(path);
}

/** A fresh random 256-bit data key (one per stored object). */
export function generateDataKey(): Buffer {
  return randomBytes(DATA_KEY_LENGTH);
}

/** Wraps `dataKey` under the keyring's active master key, bound to `objectId`. */
export function wrapKey(keyring: Keyring, dataKey: Uint8Array, objectId: string): WrappedKey {
  if (dataKey.length !== DATA_KEY_LENGTH) throw new TypeError(`data key must be ${DATA_KEY_LENGTH} bytes`);
  const nonce = randomBytes(NONCE_LENGTH);
  const cipher = createCipheriv("aes-256-gcm", masterKey(keyring, keyring.activeId), nonce, {
    authTagLength: TAG_LENGTH,
  });
  cipher.setAAD(wrapAad(objectId));
  const body = Buffer.concat([cipher.update(dataKey), cipher.final()]);
  return { wrappedKey: Buffer.concat([nonce, body, cipher.getAuthTag()]), keyId: keyring.activeId };
}

/**
 * Unwraps a data key wrapped by {@link wrapKey} for `objectId` under master key `keyId`.
 * @throws KeyringError if `keyId` is not in the keyring; IntegrityError if the wrapped key or object id was altered.
 */
export function unwrapKey(keyring: Keyring, wrapped: Uint8Array, keyId: string, objectId: string): Buffer {
  const key = masterKey(keyring, keyId);
  if (wrapped.length !== WRAPPED_LENGTH) {
    throw new IntegrityError(`wrapped data key has ${wrapped.length} bytes, expected ${WRAPPED_LENGTH}`);
  }
  const bytes = Buffer.from(wrapped);
  const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(0, NONCE_LENGTH), {
    authTagLength: TAG_LENGTH,
  });
  decipher.setAAD(wrapAad(objectId));
  decipher.setAuthTag(bytes.subarray(WRAPPED_LENGTH - TAG_LENGTH));
  try {
    return Buffer.concat([
      decipher.update(bytes.subarray(NONCE_LENGTH, WRAPPED_LENGTH - TAG_LENGTH)),
      decipher.final(),
    ]);
  } catch {
    throw new IntegrityError(
      `wrapped data key failed authentication (master key "${keyId}", wrong object or tampered)`,
    );
  }
}

/** Re-wraps a data key under the active master key (for re-keying objects after a rotation). */
export function rewrapKey(keyring: Keyring, wrapped: Uint8Array, keyId: string, objectId: string): WrappedKey {
  const dataKey = unwrapKey(keyring, wrapped, keyId, objectId);
  try {
    return wrapKey(keyring, dataKey, objectId);
  } finally {
    dataKey.fill(0);
  }
}

export interface RotateOptions {
  env: Env;
  dataDir?: string;
  /** Id for the new key; default `k<yyyymmdd>-<random hex>`. */
  newKeyId?: string;
}

/**
 * Adds a new random master key to the key file and makes it active; older keys stay, so existing objects remain
 * readable. For keys given in NEXUS_MASTER_KEYS it changes nothing and throws a KeyringError telling the operator
 * what to set instead.
 */
export function rotateMasterKey({ env, dataDir, newKeyId = defaultKeyId() }: RotateOptions): {
  keyId: string;
  path: string;
} {
  if (env.NEXUS_MASTER_KEYS?.trim()) {
    throw new KeyringError(
      "master keys come from NEXUS_MASTER_KEYS, which this command cannot edit. Generate a key " +
        "(e.g. `openssl rand -base64 32`), append `,<new-id>:<new-key>` to NEXUS_MASTER_KEYS, keeping the old keys, " +
        "set NEXUS_MASTER_KEY_ACTIVE=<new-id> (or leave the new key last), and restart.",
    );
  }
  const path = keyFilePath(env, dataDir);
  if (!fileExists(path)) throw new KeyringError(`no key file at ${path} to rotate`);
  const file = parseKeyFile(readFileSync(path, "utf8"), path);
  checkKeyId(newKeyId, "new key id");
  if (newKeyId in file.keys) throw new KeyringError(`key id "${newKeyId}" already exists in ${path}`);
  writeKeyFile(
    path,
    { active: newKeyId, keys: { ...file.keys, [newKeyId]: randomBytes(MASTER_KEY_LENGTH).toString("base64") } },
    false,
  );
  return { keyId: newKeyId, path };
}

function keyringFromEnv(value: string, active: string | undefined): Keyring {
  const entries = value.split(",").map((entry, position) => {
    const colon = entry.indexOf(":");
    if (colon < 0) throw new KeyringError(`NEXUS_MASTER_KEYS entry ${position + 1} is not of the form id:base64key`);
    return [entry.slice(0, colon).trim(), entry.slice(colon + 1).trim()] as const;
  });
  const keys = buildKeys(entries, "NEXUS_MASTER_KEYS");
  const activeId = active || entries[entries.length - 1]![0];
  if (!keys.has(activeId)) {
    throw new KeyringError(`NEXUS_MASTER_KEY_ACTIVE="${activeId}" is not one of the ids in NEXUS_MASTER_KEYS`);
  }
  return { activeId, keys, source: { kind: "env" } };
}

function keyringFromFile(path: string): Keyring {
  warnIfReadableByOthers(path);
  const file = parseKeyFile(readFileSync(path, "utf8"), path);
  const keys = buildKeys(Object.entries(file.keys), path);
  if (!keys.has(file.active))
    throw new KeyringError(`${path}: "active" names key "${file.active}", which is not in "keys"`);
  return { activeId: file.active, keys, source: { kind: "file", path } };
}

function parseKeyFile(text: string, path: string): KeyFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new KeyringError(`${path} is not valid JSON`);
  }
  const candidate = data as Partial<KeyFile> | null;
  const keys = candidate?.keys;
  if (typeof candidate?.active !== "string" || typeof keys !== "object" || keys === null || Array.isArray(keys)) {
    throw new KeyringError(`${path} must look like { "active": "id", "keys": { "id": "base64key" } }`);
  }
  if (!Object.values(keys).every((v) => typeof v === "string")) {
    throw new KeyringError(`${path}: every value in "keys" must be a base64 string`);
  }
  return { active: candidate.active, keys };
}

function buildKeys(entries: ReadonlyArray<readonly [string, string]>, where: string): Map<string, Buffer> {
  if (entries.length === 0) throw new KeyringError(`${where} holds no key`);
  const keys = new Map<string, Buffer>();
  for (const [id, encoded] of entries) {
    checkKeyId(id, `${where}: key id`);
    if (keys.has(id)) throw new KeyringError(`${where}: key id "${id}" appears twice`);
    keys.set(id, decodeKey(encoded, `${where}: key "${id}"`));
  }
  return keys;
}

function checkKeyId(id: string, what: string): void {
  if (!KEY_ID_PATTERN.test(id)) {
    throw new KeyringError(`${what} "${id}" must be 1-32 characters of A-Z, a-z, 0-9, _ or -`);
  }
}

function decodeKey(encoded: string, what: string): Buffer {
  const key = Buffer.from(encoded, "base64");
  if (key.toString("base64") !== encoded) throw new KeyringError(`${what} is not valid (padded, standard) base64`);
  if (key.length !== MASTER_KEY_LENGTH) {
    throw new KeyringError(
      `${what} must be ${MASTER_KEY_LENGTH} bytes, got ${key.length} (try \`openssl rand -base64 32\`)`,
    );
  }
  return key;
}

function masterKey(keyring: Keyring, keyId: string): Buffer {
  const key = keyring.keys.get(keyId);
  if (key === undefined) {
    throw new KeyringError(
      `unknown master key id "${keyId}" (keyring has ${[...keyring.keys.keys()].join(", ")}): ` +
        "was a retired key removed from the configuration?",
    );
  }
  return key;
}

function wrapAad(objectId: string): Buffer {
  if (objectId.length === 0) throw new TypeError("object id must not be empty");
  return Buffer.concat([WRAP_LABEL, Buffer.from(objectId, "utf8")]);
}

function keyFilePath(env: Env, dataDir: string | undefined): string {
  const explicit = env.NEXUS_MASTER_KEY_FILE?.trim();
  if (explicit) return explicit;
  if (!dataDir) throw new KeyringError("no master key configured and no data directory given for the key file");
  return join(dataDir, KEY_FILE_NAME);
}

function generateKeyFile(path: string): void {
  const id = defaultKeyId();
  try {
    writeKeyFile(path, { active: id, keys: { [id]: randomBytes(MASTER_KEY_LENGTH).toString("base64") } }, true);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return;
    throw error;
  }
  console.warn(
    [
      "",
      "################################################################################",
      `#  NEXUS: generated a master key file at ${path}`,
      "#  This is for a DEMO or a SINGLE MACHINE only. Whoever reads this file can",
      "#  decrypt every stored image; whoever loses it loses every stored image.",
      "#  Back it up somewhere safe NOW, and in production replace it with a managed",
      "#  key (NEXUS_MASTER_KEYS from a secret store, or a KMS).",
      "################################################################################",
      "",
    ].join("\n"),
  );
}

/** Writes the key file with mode 0600: `exclusive` creates it (never overwrites); otherwise replaces atomically. */
function writeKeyFile(path: string, file: KeyFile, exclusive: boolean): void {
  const text = `${JSON.stringify(file, null, 2)}\n`;
  if (exclusive) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeDurably(path, text, "wx");
    return;
  }
  const temporary = `${path}.${randomBytes(4).toString("hex")}.tmp`;
  writeDurably(temporary, text, "wx");
  renameSync(temporary, path);
}

function writeDurably(path: string, text: string, flags: string): void {
  const fd = openSync(path, flags, 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function warnIfReadableByOthers(path: string): void {
  if (process.platform === "win32") return;
  if ((statSync(path).mode & 0o077) !== 0) {
    console.warn(`NEXUS: master key file ${path} is readable by other users; run \`chmod 600 ${path}\``);
  }
}

function fileExists(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function defaultKeyId(): string {
  const day = new Date().toISOString().slice(0, 10).replaceAll("-", "");
  return `k${day}-${randomBytes(3).toString("hex")}`;
}
