/** Words shared by the audit pages and their server code (no server imports). */

/** The filters of the admin page and of the API, in form order. */
export const FILTER_FIELDS = ["actor", "patient", "action", "outcome", "requestId", "from", "to"] as const;
export type FilterField = (typeof FILTER_FIELDS)[number];
export type FilterValues = Partial<Record<FilterField, string>>;

/** Suggested in the action filter (a datalist: any other action can be typed). */
export const KNOWN_ACTIONS = [
  "auth.login",
  "session.logout",
  "token.create",
  "token.revoke",
  "account.self",
  "account.password",
  "account.list",
  "account.create",
  "account.disable",
  "account.enable",
  "audit.read",
  "audit.archive",
  "app.home",
  "patient.list",
  "patient.create",
  "patient.read",
  "patient.erase",
  "image.upload",
  "image.list",
  "image.read",
  "image.erase",
  "image.integrity",
  "image.analyse",
  "stats.view",
  "consent.read",
  "consent.update",
  "accessLog.read",
  "research.view",
  "research.image",
] as const;
