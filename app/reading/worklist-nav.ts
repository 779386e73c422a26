/**
 * Worklist navigation (issue 14): which of the reader's two worklists she is working through, carried in the exam
 * page's URL (`?liste=premiere|deuxieme`) so "next exam" follows the list she opened, with or without JavaScript.
 */
export type WorklistName = "first" | "second";

export const LIST_PARAM = "liste";
const PARAM_OF: Record<WorklistName, string> = { first: "premiere", second: "deuxieme" };

/** The list a `?liste=` value names: undefined when absent, null when it names no list (a 400). */
export function listFromParam(value: string | null): WorklistName | null | undefined {
  if (value === null || value === "") return undefined;
  const found = (Object.keys(PARAM_OF) as WorklistName[]).find((k) => PARAM_OF[k] === value);
  return found ?? null;
}

/** The exam page of `examId`, read from `list`. */
export function examUrl(examId: string, list: WorklistName | null): string {
  return `/examens/${examId}${list ? `?${LIST_PARAM}=${PARAM_OF[list]}` : ""}`;
}

export function listParam(list: WorklistName): string {
  return PARAM_OF[list];
}
