/**
 * The exam AI as a DICOM Mammography CAD SR (1.2.840.10008.5.1.4.1.1.88.50, root template TID 4000), in the
 * patient's study, so that the PACS keeps the model's output beside the images it read. What it holds (the choices
 * are in docs/decisions/2026-11-30-results-out.md):
 *
 *   Mammography CAD Report (TID 4000)
 *   ├ Language: English (TID 1204)
 *   ├ Image Library: one IMAGE per view read (TID 4020: SOP Class/Instance UIDs, laterality, view, study date)
 *   ├ CAD Processing and Findings Summary (TID 4001): "All algorithms succeeded; without findings" — the model
 *   │ scores whole images and localises nothing, so there is no Single Image Finding to report;
 *   │ └ has properties (TID 4002 body): an impression description, the exam's score, each breast's score, each
 *   │   inferred from its views' scores, each inferred from its image in the library (by reference)
 *   ├ Summary of Detections: Not Attempted
 *   └ Summary of Analyses: Succeeded → Successful Analyses (TID 4016) → the analysis performed (TID 4018) with the
 *     algorithm's name, version and weights' SHA-256 (TID 4019), inferred from every image of the library.
 *
 * Scores are the model's probability of its suspicious class, as percent under (111047, DCM, "Probability of
 * cancer"): a screening aid, not a diagnosis, and not calibrated unless the model card says so.
 */
import type { Laterality, View } from "../exams/views";
import { code, DCM, dicomDate, item, LATERALITY, NEXUS_SCHEME, numeric, SCT, SIDE, srFile, type CodedConcept, type SrItem, type SrPatient, type SrStudy } from "./sr-common.server";

export const MAMMOGRAPHY_CAD_SR = "1.2.840.10008.5.1.4.1.1.88.50";

/** CID 4014 "View for Mammography" (SPOT and MAG are view modifiers in DICOM, with no view of their own here). */
const VIEW_CODES: Partial<Record<View, CodedConcept>> = {
  CC: code("399162004", SCT, "cranio-caudal"),
  MLO: code("399368009", SCT, "medio-lateral oblique"),
  ML: code("399260004", SCT, "medio-lateral"),
  LM: code("399352003", SCT, "latero-medial"),
  XCCL: code("399192003", SCT, "cranio-caudal exaggerated laterally"),
};

export const hasViewCode = (view: View) => VIEW_CODES[view] !== undefined;

export interface CadSrView {
  seriesInstanceUid: string;
  sopClassUid: string;
  sopInstanceUid: string;
  laterality: Laterality;
  view: View;
  /** The model's probability of its suspicious class for this view (0–1). */
  score: number;
}

export interface CadSrInput {
  patient: SrPatient;
  study: SrStudy;
  algorithm: { name: string; version: string; sha256: string; clinical: boolean };
  /** The views read, each a DICOM instance of the study (views without a CID 4014 code are left out). */
  views: CadSrView[];
  /** When the model ran. */
  at: Date;
  sopInstanceUid: string;
  seriesInstanceUid: string;
}

const PERCENT = code("%", "UCUM", "Percent");
const PROBABILITY = code("111047", DCM, "Probability of cancer");
const percent = (score: number) => numeric(Math.round(score * 10_000) / 100, PERCENT);

/** Content item identifier of the k-th image of the library (root 1, library is the root's 2nd child). */
const LIBRARY_POSITION = 2;
const byReference = (relationship: string, position: number): SrItem => ({
  RelationshipType: relationship,
  ReferencedContentItemIdentifier: [1, LIBRARY_POSITION, position],
});

/** Breast and exam scores from the views (a breast's is its highest view, the exam's its highest breast). */
function aggregate(views: CadSrView[]) {
  const breast = (side: Laterality) => {
    const own = views.filter((v) => v.laterality === side);
    return own.length ? Math.max(...own.map((v) => v.score)) : null;
  };
  const breasts = { R: breast("R"), L: breast("L") };
  return { breasts, exam: Math.max(breasts.R ?? 0, breasts.L ?? 0) };
}

export function cadSr(input: CadSrInput): Buffer {
  const views = input.views.filter((v) => hasViewCode(v.view));
  if (views.length === 0) throw new Error("a CAD SR needs at least one view with DICOM identifiers");
  const studyDate = dicomDate(input.study.date);
  const library = item(
    "CONTAINS",
    "CONTAINER",
    code("111028", DCM, "Image Library"),
    { ContinuityOfContent: "SEPARATE" },
    views.map((v) =>
      item("CONTAINS", "IMAGE", null, { ReferencedSOPSequence: [{ ReferencedSOPClassUID: v.sopClassUid, ReferencedSOPInstanceUID: v.sopInstanceUid }] }, [
        item("HAS ACQ CONTEXT", "CODE", code("111027", DCM, "Image Laterality"), { ConceptCodeSequence: [SIDE[v.laterality]] }),
        item("HAS ACQ CONTEXT", "CODE", code("111031", DCM, "Image View"), { ConceptCodeSequence: [VIEW_CODES[v.view]!] }),
        ...(studyDate ? [item("HAS ACQ CONTEXT", "DATE", code("111060", DCM, "Study Date"), { Date: studyDate })] : []),
      ]),
    ),
  );
  const { breasts, exam } = aggregate(views);
  const viewScore = (v: CadSrView) =>
    item("INFERRED FROM", "NUM", PROBABILITY, percent(v.score), [
      item("HAS CONCEPT MOD", "CODE", LATERALITY, { ConceptCodeSequence: [SIDE[v.laterality]] }),
      byReference("INFERRED FROM", views.indexOf(v) + 1),
    ]);
  const breastScore = (side: Laterality) =>
    breasts[side] === null
      ? []
      : [
          item("HAS PROPERTIES", "NUM", PROBABILITY, percent(breasts[side]!), [
            item("HAS CONCEPT MOD", "CODE", LATERALITY, { ConceptCodeSequence: [SIDE[side]] }),
            ...views.filter((v) => v.laterality === side).map(viewScore),
          ]),
        ];
  const description =
    `Model output (${input.algorithm.name} ${input.algorithm.version}): probability of the suspicious class for each view; ` +
    "a breast's is the highest of its views, the exam's the highest breast. A screening aid for the readers, not a diagnosis; " +
    "no lesion is localised." +
    (input.algorithm.clinical ? "" : " Demonstration model, not clinically validated.");
  const summary = item(
    "CONTAINS",
    "CODE",
    code("111017", DCM, "CAD Processing and Findings Summary"),
    { ConceptCodeSequence: [code("111241", DCM, "All algorithms succeeded; without findings")] },
    [
      item("HAS PROPERTIES", "TEXT", code("111033", DCM, "Impression Description"), { TextValue: description }),
      item("HAS PROPERTIES", "NUM", PROBABILITY, percent(exam)),
      ...breastScore("R"),
      ...breastScore("L"),
    ],
  );
  // TID 4019 CAD Algorithm Identification: name, version and parameters, each a property of the analysis.
  const algorithm = [
    item("HAS PROPERTIES", "TEXT", code("111001", DCM, "Algorithm Name"), { TextValue: input.algorithm.name.slice(0, 1000) }),
    item("HAS PROPERTIES", "TEXT", code("111003", DCM, "Algorithm Version"), { TextValue: input.algorithm.version.slice(0, 1000) }),
    item("HAS PROPERTIES", "TEXT", code("111002", DCM, "Algorithm Parameters"), { TextValue: `weights SHA-256 ${input.algorithm.sha256}` }),
  ];
  const analyses = item(
    "CONTAINS",
    "CODE",
    code("111065", DCM, "Summary of Analyses"),
    { ConceptCodeSequence: [code("111222", DCM, "Succeeded")] },
    [
      item("INFERRED FROM", "CONTAINER", code("111062", DCM, "Successful Analyses"), { ContinuityOfContent: "SEPARATE" }, [
        item(
          "CONTAINS",
          "CODE",
          code("111004", DCM, "Analysis Performed"),
          { ConceptCodeSequence: [code("WHOLEIMAGE", NEXUS_SCHEME, "Whole-image classification of suspicion of malignancy")] },
          [...algorithm, ...views.map((_, i) => byReference("INFERRED FROM", i + 1))],
        ),
      ]),
    ],
  );
  return srFile({
    sopClassUid: MAMMOGRAPHY_CAD_SR,
    sopInstanceUid: input.sopInstanceUid,
    seriesInstanceUid: input.seriesInstanceUid,
    seriesNumber: "901",
    patient: input.patient,
    study: input.study,
    at: input.at,
    title: code("111036", DCM, "Mammography CAD Report"),
    template: "4000",
    completion: "COMPLETE",
    evidence: views,
    content: [
      item("HAS CONCEPT MOD", "CODE", code("121049", DCM, "Language of Content Item and Descendants"), { ConceptCodeSequence: [code("en", "RFC5646", "English")] }),
      library,
      summary,
      item("CONTAINS", "CODE", code("111064", DCM, "Summary of Detections"), { ConceptCodeSequence: [code("111225", DCM, "Not Attempted")] }),
      analyses,
    ],
  });
}

