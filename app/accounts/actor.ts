import type { Role } from "../db/schema";

/** Who is making a request, as every policy decision and audit event sees it. */
export interface Actor {
  id: string;
  email: string;
  name: string;
  role: Role;
  /** For a patient account: the patient record it is linked to. */
  patientId: string | null;
  /** For a machine account (`system`): what it may do (`store`, `query`); absent for people. */
  scopes?: readonly string[];
  /** MFA_REQUIRED asks this role for a second factor and none is enrolled yet: only enrolment is open. */
  secondFactorMissing?: boolean;
}
