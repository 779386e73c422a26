/** The words shared by the server and the interface (no server-only imports here). */
export const ROLES = ["admin", "doctor", "patient", "researcher"] as const;
export type Role = (typeof ROLES)[number];

/** Consent purposes: care (care team views images), ai_analysis (model reads them), research (pseudonymised). */
export const PURPOSES = ["care", "ai_analysis", "research"] as const;
export type Purpose = (typeof PURPOSES)[number];

export const OUTCOMES = ["allowed", "denied", "error"] as const;
export type Outcome = (typeof OUTCOMES)[number];
