/**
 * Result letters, rendered on request as PDF with pdf-lib (docs/decisions/2026-11-30-result-letters-pdf-lib.md):
 * nothing is written to disk. Two documents, both in French:
 *  - the woman's letter, in plain language, with NO model output of any kind (its input type has no AI field);
 *  - the referring doctor's report: ACR and density per breast, findings, both readers and dates, and the AI model
 *    with its non-clinical status when it is a demonstration model.
 * The standard Helvetica font (WinAnsi) covers French accents, « », œ and ’; other characters are replaced.
 */
import { PDFDocument, StandardFonts, rgb, type PDFFont, type PDFPage } from "pdf-lib";
import type { Finding } from "./reading-schema";
import type { FinalStatus, ReadingKind } from "./workflow";

export interface LetterReading {
  kind: ReadingKind;
  readerName: string;
  at: Date;
  technicallyInadequate: boolean;
  breasts?: { R: { acr: number; density: string }; L: { acr: number; density: string } } | null;
  findings: Finding[];
  conclusion?: string | null;
}

export interface LetterData {
  centre: { name: string; phone: string };
  patient: { displayName: string; birthDate?: string | null; ipp?: string | null };
  exam: { date: string; accessionNumber?: string | null; status: FinalStatus };
  readings: LetterReading[];
  generatedAt: Date;
}

export interface ReferrerData extends LetterData {
  ai?: { modelName: string; modelVersion: string; clinical: boolean; examProbability?: number | null } | null;
}

const PAGE = { width: 595.28, height: 841.89, margin: 56 };

/** WinAnsi cannot encode every character: keep the text, replace what the font cannot draw. */
function printable(font: PDFFont, text: string): string {
  const normalised = text.replace(/[\u202f\u00a0]/g, " ").replace(/[\u2018]/g, "'");
  let out = "";
  for (const ch of normalised) {
    try {
      font.encodeText(ch);
      out += ch;
    } catch {
      out += "?";
    }
  }
  return out;
}

class Writer {
  private page: PDFPage;
  private y: number;
  constructor(
    private readonly doc: PDFDocument,
    private readonly font: PDFFont,
    private readonly bold: PDFFont,
  ) {
    this.page = doc.addPage([PAGE.width, PAGE.height]);
    this.y = PAGE.height - PAGE.margin;
  }

  private ensure(height: number) {
    if (this.y - height < PAGE.margin) {
      this.page = this.doc.addPage([PAGE.width, PAGE.height]);
      this.y = PAGE.height - PAGE.margin;
    }
  }

  /** A paragraph wrapped to the page width. */
  text(text: string, options: { size?: number; bold?: boolean; gap?: number; indent?: number } = {}) {
    const size = options.size ?? 11;
    const font = options.bold ? this.bold : this.font;
    const width = PAGE.width - 2 * PAGE.margin - (options.indent ?? 0);
    const lines: string[] = [];
    for (const para of printable(font, text).split("\n")) {
      let line = "";
      for (const word of para.split(/\s+/).filter(Boolean)) {
        const candidate = line ? `${line} ${word}` : word;
        if (font.widthOfTextAtSize(candidate, size) > width && line) {
          lines.push(line);
          line = word;
        } else {
          line = candidate;
        }
      }
      lines.push(line);
    }
    for (const line of lines) {
      this.ensure(size * 1.4);
      this.page.drawText(line, { x: PAGE.margin + (options.indent ?? 0), y: this.y - size, size, font, color: rgb(0.1, 0.1, 0.15) });
      this.y -= size * 1.4;
    }
    this.y -= options.gap ?? 6;
  }

  space(points: number) {
    this.y -= points;
  }
}

async function newDocument(title: string) {
  const doc = await PDFDocument.create();
  doc.setTitle(title);
  doc.setLanguage("fr-FR");
  doc.setProducer("Nexus");
  doc.setCreator("Nexus");
  const font = await doc.embedFont(StandardFonts.Helvetica);
  const bold = await doc.embedFont(StandardFonts.HelveticaBold);
  return { doc, w: new Writer(doc, font, bold) };
}

/** 2026-11-30 → 30/11/2026 (the French way, unambiguous in a letter). */
export function frenchDate(value: string | Date): string {
  const iso = typeof value === "string" ? value : value.toISOString();
  const [y, m, d] = iso.slice(0, 10).split("-");
  return `${d}/${m}/${y}`;
}

function header(w: Writer, data: LetterData, title: string) {
  w.text(data.centre.name, { bold: true, size: 13, gap: 2 });
  w.text(`Téléphone : ${data.centre.phone}`, { size: 10, gap: 14 });
  w.text(title, { bold: true, size: 15, gap: 10 });
  const who = [`Patiente : ${data.patient.displayName}`];
  if (data.patient.birthDate) who.push(`née le ${frenchDate(data.patient.birthDate)}`);
  if (data.patient.ipp) who.push(`IPP ${data.patient.ipp}`);
  w.text(who.join(" — "), { size: 10, gap: 2 });
  const exam = [`Mammographie de dépistage du ${frenchDate(data.exam.date)}`];
  if (data.exam.accessionNumber) exam.push(`n° d'examen ${data.exam.accessionNumber}`);
  w.text(exam.join(" — "), { size: 10, gap: 2 });
  w.text(`Document établi le ${frenchDate(data.generatedAt)}`, { size: 10, gap: 16 });
}

const PATIENT_TEXT: Record<FinalStatus, { title: string; body: string[] }> = {
  final_normal: {
    title: "Résultat de votre mammographie de dépistage",
    body: [
      "Madame,",
      "Votre mammographie a été lue par deux radiologues, l'un après l'autre. Ils n'ont rien trouvé d'anormal : le résultat est normal.",
      "Vous n'avez rien à faire de plus pour le moment. Vous recevrez une nouvelle invitation au dépistage dans deux ans.",
      "Si d'ici là vous remarquez un changement de vos seins (une boule, une rougeur, un écoulement, une modification de la peau ou du mamelon), parlez-en sans attendre à votre médecin traitant.",
    ],
  },
  recall: {
    title: "Résultat de votre mammographie de dépistage : des examens complémentaires sont nécessaires",
    body: [
      "Madame,",
      "Votre mammographie a été lue par deux radiologues. Ils souhaitent compléter l'examen : des examens complémentaires sont nécessaires (par exemple d'autres clichés ou une échographie).",
      "Cela ne veut pas dire que vous avez un cancer : la plupart des examens complémentaires sont rassurants. Mais il est important de les faire.",
      "Ce qui va se passer : le centre de radiologie vous propose un rendez-vous pour ces examens. Votre médecin traitant reçoit aussi le compte rendu.",
    ],
  },
  technical_recall: {
    title: "Votre mammographie de dépistage doit être refaite",
    body: [
      "Madame,",
      "Les images de votre mammographie ne sont pas d'une qualité suffisante pour être lues correctement (par exemple un cliché flou ou incomplet). Cela arrive parfois et ne dit rien de votre santé.",
      "De nouvelles images sont nécessaires : le centre de radiologie vous propose un nouveau rendez-vous. Ces nouveaux clichés sont pris en charge comme le premier examen.",
    ],
  },
};

/** The woman's letter. Its input has no AI field: no model output can reach it. */
export async function renderPatientLetter(data: LetterData): Promise<Uint8Array> {
  const text = PATIENT_TEXT[data.exam.status];
  const { doc, w } = await newDocument(text.title);
  header(w, data, text.title);
  for (const para of text.body) w.text(para, { gap: 10 });
  w.text(`Pour toute question, ou pour prendre rendez-vous, appelez le ${data.centre.name} au ${data.centre.phone}.`, { gap: 10 });
  w.text("Nous vous prions d'agréer, Madame, nos salutations distinguées.", { gap: 10 });
  w.text("Les radiologues du centre de dépistage", { bold: true });
  return doc.save();
}

const KIND_FR: Record<ReadingKind, string> = {
  first: "Première lecture (L1)",
  workup: "Conclusion après bilan de diagnostic immédiat (L1)",
  second: "Deuxième lecture (L2)",
  arbitration: "Lecture d'arbitrage (L3)",
};

const FINDING_FR: Record<Finding["type"], string> = {
  mass: "masse",
  calcifications: "calcifications",
  distortion: "distorsion architecturale",
  asymmetry: "asymétrie",
  other: "autre anomalie",
};

const QUADRANT_FR: Record<NonNullable<Finding["quadrant"]>, string> = {
  UOQ: "quadrant supéro-externe",
  UIQ: "quadrant supéro-interne",
  LOQ: "quadrant inféro-externe",
  LIQ: "quadrant inféro-interne",
  central: "région rétro-aréolaire",
};

const SIDE_FR = { R: "sein droit", L: "sein gauche" } as const;

export function describeFinding(f: Finding): string {
  const parts = [`${FINDING_FR[f.type]}, ${SIDE_FR[f.laterality]}`];
  if (f.quadrant) parts.push(QUADRANT_FR[f.quadrant]);
  if (f.clock) parts.push(`${f.clock} h`);
  if (f.sizeMm) parts.push(`${f.sizeMm} mm`);
  return parts.join(", ");
}

const RESULT_FR: Record<FinalStatus, string> = {
  final_normal: "Dépistage négatif (normal ou bénin en double lecture). Prochaine invitation dans deux ans.",
  recall: "Dépistage positif : bilan de diagnostic différé à organiser.",
  technical_recall: "Clichés techniquement insuffisants : nouvelle mammographie à réaliser.",
};

/** The referring doctor's report. */
export async function renderReferrerReport(data: ReferrerData): Promise<Uint8Array> {
  const title = "Compte rendu de mammographie de dépistage (double lecture)";
  const { doc, w } = await newDocument(title);
  header(w, data, title);
  w.text(`Résultat : ${RESULT_FR[data.exam.status]}`, { bold: true, gap: 12 });
  for (const r of data.readings) {
    w.text(`${KIND_FR[r.kind]} — Dr ${r.readerName}, le ${frenchDate(r.at)}`, { bold: true, gap: 4 });
    if (r.breasts) {
      w.text(`Sein droit : ACR ${r.breasts.R.acr}, densité ${r.breasts.R.density}`, { indent: 12, gap: 2 });
      w.text(`Sein gauche : ACR ${r.breasts.L.acr}, densité ${r.breasts.L.density}`, { indent: 12, gap: 2 });
    }
    if (r.technicallyInadequate) w.text("Clichés déclarés techniquement insuffisants.", { indent: 12, gap: 2 });
    if (r.findings.length === 0) w.text("Aucune anomalie décrite.", { indent: 12, gap: 2 });
    for (const f of r.findings) w.text(`Anomalie : ${describeFinding(f)}`, { indent: 12, gap: 2 });
    if (r.conclusion) w.text(`Conclusion : ${r.conclusion}`, { indent: 12, gap: 2 });
    w.space(8);
  }
  if (data.ai) {
    w.text("Aide à la lecture par intelligence artificielle", { bold: true, gap: 4 });
    w.text(`Modèle ${data.ai.modelName}, version ${data.ai.modelVersion}.`, { indent: 12, gap: 2 });
    if (typeof data.ai.examProbability === "number") {
      w.text(`Score de l'examen : ${(data.ai.examProbability * 100).toFixed(1)} %.`, { indent: 12, gap: 2 });
    }
    if (!data.ai.clinical) {
      w.text(
        "Modèle de démonstration, non validé cliniquement (sans marquage CE) : son résultat n'a aucune valeur diagnostique et ne remplace pas la lecture des radiologues.",
        { indent: 12, gap: 2 },
      );
    }
    w.space(8);
  }
  w.text("Classification ACR (BI-RADS) : 1 normal, 2 bénin, 3 probablement bénin, 4 suspect, 5 très évocateur, 0 examen incomplet. Densité A à D.", { size: 9 });
  return doc.save();
}
