import { describe, expect, it } from "vitest";
import type { ExamDetail } from "../exams/exams.server";
import { priorExam } from "./prior.server";

const exam = (id: string, date: string, createdAt: string, images = 1, patientId = "p1") =>
  ({ id, patientId, date, createdAt, images: Array.from({ length: images }, (_, i) => ({ imageId: `${id}-${i}` })) }) as unknown as ExamDetail;

describe("prior exam", () => {
  it("is the most recent earlier exam of the same patient that has images", () => {
    const current = exam("c", "2026-11-30", "2026-11-30T10:00:00Z");
    const history = [current, exam("old", "2022-11-01", "2022-11-01T09:00:00Z"), exam("empty", "2025-01-01", "2025-01-01T09:00:00Z", 0), exam("p", "2024-11-28", "2024-11-28T09:00:00Z"), exam("other", "2025-06-01", "2025-06-01T09:00:00Z", 1, "p2"), exam("later", "2026-12-05", "2026-12-05T09:00:00Z")];
    expect(priorExam(current, history)?.id).toBe("p");
    expect(priorExam(current, [current])).toBeNull();
    // Two exams the same day: the one filed earlier is the prior.
    expect(priorExam(current, [current, exam("same", "2026-11-30", "2026-11-30T08:00:00Z")])?.id).toBe("same");
  });
});
