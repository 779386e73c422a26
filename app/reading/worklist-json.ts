import type { WorklistEntry } from "./readings.server";

/** The API's shape of a worklist (API.md: id, patientId, date, waitingSince; plus what a reader needs to pick). */
export function worklistJson(list: { exams: WorklistEntry[]; more: boolean }) {
  return {
    exams: list.exams.map((e) => ({
      id: e.id,
      patientId: e.patientId,
      patient: { displayName: e.patientName, birthDate: e.birthDate, ipp: e.ipp },
      date: e.date,
      accessionNumber: e.accessionNumber,
      status: e.status,
      waitingSince: e.waitingSince,
      views: e.views,
      complete: e.complete,
    })),
    more: list.more,
  };
}
