/**
 * The one schema of a reading, shared by the reading form (browser constraints, field names, error display) and the
 * API/page actions (parse). Messages are French first; the form shows them next to their field.
 * No server-only imports: the form component imports it.
 */
import { z } from "zod";
import { ACR_CATEGORIES } from "./workflow";

export const SIDES = ["R", "L"] as const;
export type Side = (typeof SIDES)[number];
export const DENSITIES = ["A", "B", "C", "D"] as const;
export const FINDING_TYPES = ["mass", "calcifications", "distortion", "asymmetry", "other"] as const;
/** Quadrants as in French reports: QSE, QSI, QIE, QII, and the central (retro-areolar) region. */
export const QUADRANTS = ["UOQ", "UIQ", "LOQ", "LIQ", "central"] as const;
export const MAX_FINDINGS = 10;
export const MAX_SIZE_MM = 300;
export const MAX_CONCLUSION = 2000;

const acr = z.coerce
  .number({ message: "ACR : un nombre de 0 à 5 est attendu." })
  .int("ACR : un nombre entier de 0 à 5 est attendu.")
  .min(0, "ACR : entre 0 et 5.")
  .max(5, "ACR : entre 0 et 5.")
  .refine((n) => (ACR_CATEGORIES as readonly number[]).includes(n));

const breast = z.object({
  acr,
  density: z.enum(DENSITIES, { message: "Densité : A, B, C ou D." }),
});

export const findingSchema = z
  .object({
    laterality: z.enum(SIDES, { message: "Côté du sein obligatoire (R ou L)." }),
    type: z.enum(FINDING_TYPES, { message: "Type d'anomalie inconnu." }),
    quadrant: z.enum(QUADRANTS, { message: "Quadrant inconnu." }).optional(),
    clock: z.coerce.number().int("Position horaire : un entier de 1 à 12.").min(1, "Position horaire : de 1 à 12.").max(12, "Position horaire : de 1 à 12.").optional(),
    sizeMm: z.coerce.number().positive("Taille : un nombre de millimètres positif.").max(MAX_SIZE_MM, `Taille : au plus ${MAX_SIZE_MM} mm.`).optional(),
  })
  .strict();

export const readingSchema = z
  .object({
    breasts: z.object({ R: breast, L: breast }, { message: "ACR et densité obligatoires pour chaque sein." }).optional(),
    technicallyInadequate: z.boolean().default(false),
    findings: z.array(findingSchema).max(MAX_FINDINGS, `Au plus ${MAX_FINDINGS} anomalies.`).default([]),
    conclusion: z.string().trim().max(MAX_CONCLUSION, `Conclusion : au plus ${MAX_CONCLUSION} caractères.`).optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (!r.breasts && !r.technicallyInadequate) {
      ctx.addIssue({ code: "custom", path: ["breasts"], message: "ACR et densité obligatoires pour chaque sein (sauf images techniquement insuffisantes)." });
    }
  });

export type ReadingInput = z.infer<typeof readingSchema>;
export type Finding = z.infer<typeof findingSchema>;

/** Field errors keyed by their full path (`breasts.R.acr`, `findings.0.laterality`), first message per field. */
export function readingErrors(error: z.ZodError): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const issue of error.issues) {
    const key = issue.path.length ? issue.path.join(".") : "form";
    errors[key] ??= issue.message;
  }
  return errors;
}

export type ReadingParse = { ok: true; data: ReadingInput } | { ok: false; errors: Record<string, string> };

export function parseReading(input: unknown): ReadingParse {
  const parsed = readingSchema.safeParse(input);
  return parsed.success ? { ok: true, data: parsed.data } : { ok: false, errors: readingErrors(parsed.error) };
}

/**
 * The form's flat field names → the schema's shape. Names: `R.acr`, `R.density`, `L.acr`, `L.density`,
 * `technicallyInadequate`, `conclusion`, and per finding row i: `finding.i.laterality|type|quadrant|clock|sizeMm`
 * (a row whose fields are all empty is ignored, so the form can offer blank rows without JavaScript).
 */
export function readingFromForm(form: FormData): unknown {
  const str = (name: string) => {
    const v = form.get(name);
    return typeof v === "string" && v.trim() !== "" ? v.trim() : undefined;
  };
  const inadequate = form.get("technicallyInadequate") != null;
  const sides = Object.fromEntries(SIDES.map((s) => [s, { acr: str(`${s}.acr`), density: str(`${s}.density`) }]));
  const anyBreast = SIDES.some((s) => str(`${s}.acr`) !== undefined || str(`${s}.density`) !== undefined);
  const findings: Record<string, string | undefined>[] = [];
  for (let i = 0; i < MAX_FINDINGS + 1; i++) {
    const row = Object.fromEntries(
      ["laterality", "type", "quadrant", "clock", "sizeMm"].map((f) => [f, str(`finding.${i}.${f}`)]),
    );
    if (Object.values(row).some((v) => v !== undefined)) {
      findings.push(Object.fromEntries(Object.entries(row).filter(([, v]) => v !== undefined)));
    }
  }
  return {
    ...(anyBreast || !inadequate ? { breasts: sides } : {}),
    technicallyInadequate: inadequate,
    findings,
    ...(str("conclusion") ? { conclusion: str("conclusion") } : {}),
  };
}

/** A form error key (`breasts.R.acr`, `findings.0.laterality`) → the form field it belongs to (`R.acr`, `finding.0.laterality`). */
export function formFieldOf(errorKey: string): string {
  if (errorKey.startsWith("breasts.")) return errorKey.slice("breasts.".length);
  if (errorKey.startsWith("findings.")) return "finding." + errorKey.slice("findings.".length);
  return errorKey;
}
