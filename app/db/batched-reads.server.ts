/**
 * Concurrent reads of one kind in one statement (issue 15). The keys asked for during one turn of the event loop are
 * read together when the turn ends (`setImmediate`, after every request that arrived in it has run up to its first
 * wait), and each caller gets its own key's answer.
 *
 * Not a cache: nothing is kept once a batch is answered, and a read is sent only after it was asked for, so it sees
 * every change committed before (a revoked token, an ended session, a disabled account). What it saves is round
 * trips: under load, the requests that the audit group commit answers together come back together, and their next
 * lookups — the bearer token, the session, the account — leave as one statement instead of one each. On these
 * virtual machines each round trip costs its sender a `writev` that wakes PostgreSQL (≈ 70 µs) and PostgreSQL a
 * statement of its own.
 */

interface Waiter<V> {
  resolve(value: V | undefined): void;
  reject(error: unknown): void;
}

/** Most keys one statement carries; more wait for the statements after it (all sent at once). */
const MAX_KEYS = 256;

/**
 * `read` answers a list of distinct keys with the entries it found (a key without an entry resolves to undefined).
 * A failed read rejects every caller of its batch with its error, as each would have failed alone.
 */
export function batchedReads<K, V>(read: (keys: K[]) => Promise<Iterable<readonly [K, V]>>): (key: K) => Promise<V | undefined> {
  let waiting = new Map<K, Waiter<V>[]>();
  let scheduled = false;

  const run = async (batch: Map<K, Waiter<V>[]>) => {
    try {
      const found = new Map(await read([...batch.keys()]));
      for (const [key, waiters] of batch) for (const w of waiters) w.resolve(found.get(key));
    } catch (error) {
      for (const waiters of batch.values()) for (const w of waiters) w.reject(error);
    }
  };

  const flush = () => {
    scheduled = false;
    const all = waiting;
    waiting = new Map();
    let batch = new Map<K, Waiter<V>[]>();
    for (const [key, waiters] of all) {
      batch.set(key, waiters);
      if (batch.size === MAX_KEYS) {
        void run(batch);
        batch = new Map();
      }
    }
    if (batch.size > 0) void run(batch);
  };

  return (key) =>
    new Promise<V | undefined>((resolve, reject) => {
      const waiters = waiting.get(key);
      if (waiters) waiters.push({ resolve, reject });
      else waiting.set(key, [{ resolve, reject }]);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}
