/** The process's vault: master keys and object store from the environment, read once at start-up. */
import { config } from "../config.server";
import { loadKeyring } from "./keys.server";
import { storeFromEnv } from "./s3-store.server";
import { Vault } from "./vault.server";

// On the embedded default a master key file is generated once into DATA_DIR (with a loud warning); anywhere else
// a missing key stops the start with a message naming NEXUS_MASTER_KEYS / NEXUS_MASTER_KEY_FILE.
const keyring = loadKeyring({ env: process.env, dataDir: config.DATA_DIR, allowGenerate: config.embedded });

export const vault = new Vault(storeFromEnv(process.env, config.DATA_DIR), keyring);
