import { config } from "../config.server";

/** Whether this role must have a second factor (MFA_REQUIRED: staff = everyone but patients; all; none). */
export function mfaRequiredFor(role: string): boolean {
  if (config.MFA_REQUIRED === "all") return true;
  if (config.MFA_REQUIRED === "staff") return role !== "patient";
  return false;
}
