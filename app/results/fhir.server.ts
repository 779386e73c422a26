/**
 * A final exam's result as a FHIR R4 Bundle (type `collection`): Patient (IPP and INS identifiers), ImagingStudy
 * (StudyInstanceUID, series and instances, modality MG), DiagnosticReport (final, conclusion, results) and one
 * Observation per breast for the ACR (BI-RADS) assessment and one for the density. Every reference points inside the
 * bundle (`urn:uuid:` full URLs derived from Nexus's ids, so the same result gives the same bundle). It carries no
 * model output: the exam AI is the CAD SR's, for readers only.
 */
import { createHash } from "node:crypto";
import { config } from "../config.server";
import type { FinalResult } from "./results.server";

export const SNOMED = "http://snomed.info/sct";
export const LOINC = "http://loinc.org";
export const DICOM_DCM = "http://dicom.nema.org/resources/ontology/DCM";
/** INS (identifiant national de santé, NIR) — the ANS OID. */
export const INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8";
const V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203";
const FR_V2_0203 = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203";

const coding = (system: string, code: string, display: string) => ({ system, code, display });

const BREAST = { R: coding(SNOMED, "73056007", "Right breast structure"), L: coding(SNOMED, "80248007", "Left breast structure") };
const SIDE = { R: coding(SNOMED, "24028007", "Right"), L: coding(SNOMED, "7771000", "Left") };
/** ACR/BI-RADS assessment categories (SNOMED CT "Mammography assessment (Category n)"). */
const ACR: Record<number, ReturnType<typeof coding>> = {
  0: coding(SNOMED, "397138000", "Mammography assessment (Category 0) - Need additional imaging evaluation"),
  1: coding(SNOMED, "397140005", "Mammography assessment (Category 1) - Negative"),
  2: coding(SNOMED, "397141009", "Mammography assessment (Category 2) - Benign finding"),
  3: coding(SNOMED, "397143007", "Mammography assessment (Category 3) - Probably benign finding, short interval follow-up"),
  4: coding(SNOMED, "397144001", "Mammography assessment (Category 4) - Suspicious abnormality, biopsy should be considered"),
  5: coding(SNOMED, "397145000", "Mammography assessment (Category 5) - Highly suggestive of malignancy"),
};
const DENSITY: Record<string, ReturnType<typeof coding>> = {
  A: coding(SNOMED, "129716005", "Almost entirely fat"),
  B: coding(SNOMED, "129717001", "Scattered fibroglandular densities"),
  C: coding(SNOMED, "129718006", "Heterogeneously dense"),
  D: coding(SNOMED, "129719003", "Extremely dense"),
};
const ASSESSMENT = coding(DICOM_DCM, "111005", "Assessment Category");
const COMPOSITION = coding(SNOMED, "129715009", "Breast composition");

/** Conclusions by final status (French first: the language of the programme's reports). */
const STATUS_CONCLUSION: Record<string, string> = {
  final_normal: "Mammographie de dépistage sans anomalie (Normal screening mammogram).",
  recall: "Anomalie à explorer : examens complémentaires nécessaires (Recall for further assessment).",
  technical_recall: "Qualité technique insuffisante : nouveaux clichés nécessaires (Technical recall).",
};

/** A stable `urn:uuid:` for a resource of this result. */
function urn(...parts: string[]): string {
  const h = createHash("sha256").update(parts.join("\u0000")).digest("hex");
  return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const idOf = (fullUrl: string) => fullUrl.slice("urn:uuid:".length);
const GENDER: Record<string, string> = { F: "female", M: "male", U: "unknown" };

export function fhirBundle(result: FinalResult, now = new Date()) {
  const { exam, patient, final, instances } = result;
  const patientUrl = urn("patient", patient.id);
  const studyUrl = urn("study", exam.id);
  const reportUrl = urn("report", final.id);
  const effective = exam.date;

  const identifiers = [
    ...(patient.ipp
      ? [{ use: "usual", type: { coding: [coding(V2_0203, "PI", "Patient internal identifier")] }, system: config.FHIR_IPP_SYSTEM, value: patient.ipp }]
      : []),
    ...(patient.ins ? [{ use: "official", type: { coding: [coding(FR_V2_0203, "INS-NIR", "NIR définitif")] }, system: INS_SYSTEM, value: patient.ins }] : []),
  ];
  const patientResource = {
    resourceType: "Patient",
    id: idOf(patientUrl),
    ...(identifiers.length ? { identifier: identifiers } : {}),
    name: [{ text: patient.displayName }],
    ...(patient.sex && GENDER[patient.sex] ? { gender: GENDER[patient.sex] } : {}),
    ...(patient.birthDate ? { birthDate: patient.birthDate } : {}),
  };

  // DICOM instances grouped by series (JPEG/PNG uploads have no DICOM identity and are not listed).
  const dicom = instances.filter((i) => i.sopInstanceUid && i.seriesInstanceUid && i.sopClassUid);
  const seriesUids = [...new Set(dicom.map((i) => i.seriesInstanceUid!))];
  const series = seriesUids.map((uid, n) => {
    const members = dicom.filter((i) => i.seriesInstanceUid === uid);
    const sides = [...new Set(members.map((i) => i.laterality))];
    const modality = members[0]!.modality || "MG";
    return {
      uid,
      number: n + 1,
      modality: coding(DICOM_DCM, modality, modality === "MG" ? "Mammography" : modality),
      numberOfInstances: members.length,
      bodySite: coding(SNOMED, "76752008", "Breast structure"),
      ...(sides.length === 1 && (sides[0] === "R" || sides[0] === "L") ? { laterality: SIDE[sides[0]] } : {}),
      instance: members.map((i, k) => ({
        uid: i.sopInstanceUid!,
        sopClass: { system: "urn:ietf:rfc:3986", code: `urn:oid:${i.sopClassUid}` },
        number: k + 1,
      })),
    };
  });
  const study = {
    resourceType: "ImagingStudy",
    id: idOf(studyUrl),
    identifier: [
      { system: "urn:dicom:uid", value: `urn:oid:${exam.studyInstanceUid}` },
      ...(exam.accessionNumber ? [{ type: { coding: [coding(V2_0203, "ACSN", "Accession ID")] }, value: exam.accessionNumber }] : []),
    ],
    status: "available",
    modality: [coding(DICOM_DCM, "MG", "Mammography")],
    subject: { reference: patientUrl },
    started: effective,
    numberOfSeries: series.length,
    numberOfInstances: dicom.length,
    ...(series.length ? { series } : {}),
  };

  const observations: { fullUrl: string; resource: Record<string, unknown> }[] = [];
  if (final.breasts) {
    for (const side of ["R", "L"] as const) {
      const b = final.breasts[side];
      const common = {
        resourceType: "Observation",
        status: "final",
        category: [{ coding: [coding("http://terminology.hl7.org/CodeSystem/observation-category", "imaging", "Imaging")] }],
        subject: { reference: patientUrl },
        effectiveDateTime: effective,
        bodySite: { coding: [BREAST[side]] },
        derivedFrom: [{ reference: studyUrl }],
      };
      const assessment = urn("acr", final.id, side);
      const density = urn("density", final.id, side);
      observations.push(
        {
          fullUrl: assessment,
          resource: {
            ...common,
            id: idOf(assessment),
            code: { coding: [ASSESSMENT], text: "Classification ACR (BI-RADS)" },
            valueCodeableConcept: { coding: [ACR[b.acr]!], text: `ACR ${b.acr}` },
          },
        },
        {
          fullUrl: density,
          resource: {
            ...common,
            id: idOf(density),
            code: { coding: [COMPOSITION], text: "Densité mammaire" },
            valueCodeableConcept: { coding: [DENSITY[b.density]!], text: `Densité ${b.density}` },
          },
        },
      );
    }
  }
  const conclusion = [STATUS_CONCLUSION[exam.status], final.conclusion].filter(Boolean).join(" ");
  const report = {
    resourceType: "DiagnosticReport",
    id: idOf(reportUrl),
    status: "final",
    category: [{ coding: [coding("http://terminology.hl7.org/CodeSystem/v2-0074", "RAD", "Radiology")] }],
    code: { coding: [coding(LOINC, "24606-6", "MG Breast Screening")], text: "Mammographie de dépistage" },
    subject: { reference: patientUrl },
    effectiveDateTime: effective,
    issued: final.createdAt,
    resultsInterpreter: result.readings.map((r) => ({ display: r.reader.name })),
    ...(observations.length ? { result: observations.map((o) => ({ reference: o.fullUrl })) } : {}),
    imagingStudy: [{ reference: studyUrl }],
    conclusion,
  };
  return {
    resourceType: "Bundle",
    id: idOf(urn("bundle", final.id)),
    type: "collection",
    timestamp: now.toISOString(),
    entry: [
      { fullUrl: reportUrl, resource: report },
      { fullUrl: patientUrl, resource: patientResource },
      { fullUrl: studyUrl, resource: study },
      ...observations,
    ],
  };
}
