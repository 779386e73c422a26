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
