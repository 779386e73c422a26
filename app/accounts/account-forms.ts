import { z } from "zod";
import { HUMAN_ROLES } from "../vocabulary";
import { MIN_PASSWORD_LENGTH } from "./password-policy";

export const newAccountSchema = z.object({
  name: z.string().trim().min(2, "Le nom doit comporter au moins 2 caractères.").max(200),
  email: z.email("Adresse e-mail invalide.").max(320),
  role: z.enum(HUMAN_ROLES, { message: "Rôle inconnu." }),
  password: z
    .string()
    .min(MIN_PASSWORD_LENGTH, `Le mot de passe doit comporter au moins ${MIN_PASSWORD_LENGTH} caractères.`)
    .max(1024),
});

export const changePasswordSchema = z.object({
  current: z.string().min(1, "Saisissez votre mot de passe actuel."),
  next: z
    .string()
    .min(MIN_PASSWORD_LENGTH, `Le mot de passe doit comporter au moins ${MIN_PASSWORD_LENGTH} caractères.`)
    .max(1024),
});

/** A new password chosen at the first login with a temporary one (the restricted session is the proof). */
export const newPasswordSchema = z
  .object({
    next: z
      .string()
      .min(MIN_PASSWORD_LENGTH, `Le mot de passe doit comporter au moins ${MIN_PASSWORD_LENGTH} caractères.`)
      .max(1024),
    confirm: z.string().max(1024),
  })
  .refine((v) => v.next === v.confirm, { path: ["confirm"], message: "Les deux mots de passe diffèrent." });

/** The second-factor settings page: one schema per intent, parsed as a discriminated union. */
export const totpIntentSchema = z.discriminatedUnion("intent", [
  z.object({ intent: z.literal("begin") }),
  z.object({ intent: z.literal("confirm"), code: z.string().trim().regex(/^\d{6}$/, "Saisissez le code à 6 chiffres de l'application.") }),
  z.object({
    intent: z.literal("disable"),
    password: z.string().min(1, "Saisissez votre mot de passe."),
    code: z.string().trim().min(6, "Saisissez un code à 6 chiffres ou un code de secours.").max(64),
  }),
]);

/** One's own sessions and tokens: end one of them. */
export const endCredentialSchema = z.discriminatedUnion("intent", [
  z.object({ intent: z.literal("end-session"), id: z.string().regex(/^[0-9a-f]{64}$/, "Session inconnue.") }),
  z.object({ intent: z.literal("end-token"), id: z.uuid("Jeton inconnu.") }),
]);

/** An admin edits a name and a role. */
export const editAccountSchema = newAccountSchema.pick({ name: true, role: true }).extend({
  /** The professional identifier the identity provider sends (RPPS for Pro Santé Connect); empty: not linked. */
  oidcSubject: z
    .string()
    .trim()
    .max(200)
    .optional()
    .transform((v) => (v ? v : null)),
});
