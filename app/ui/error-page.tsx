/**
 * What an error page says: what happened and what to do, in the reader's language, chosen from the status and the
 * error's code (never a raw server message in another language, never a stack). Used by the root ErrorBoundary and
 * by the browser's file, heatmap and export links (app/http/error-page.server.ts).
 */
import { reasonText } from "../i18n/reasons";
import { translator, type Lang, type StringKey } from "../i18n/strings";

export interface ErrorInfo {
  status: number;
  /** The machine code of the failure (`forbidden`, `csrf`, `not_found`, …), when known. */
  code?: string | null;
  /** The server's message (French): shown only when it is a policy reason we can translate. */
  message?: string | null;
}

type Kind = "badRequest" | "forbidden" | "csrf" | "notFound" | "gone" | "conflict" | "tooLarge" | "unprocessable" | "tooMany" | "unavailable" | "server";

function kindOf({ status, code }: ErrorInfo): Kind {
  if (status === 403 && code === "csrf") return "csrf";
  if (status === 401 || status === 403) return "forbidden";
  if (status === 404) return "notFound";
  if (status === 410) return "gone";
  if (status === 409) return "conflict";
  if (status === 413) return "tooLarge";
  if (status === 422 || status === 415) return "unprocessable";
  if (status === 429) return "tooMany";
  if (status === 503) return "unavailable";
  if (status >= 400 && status < 500) return "badRequest";
  return "server";
}

/** Title, what happened and what to do for an error, in `lang`. */
export function describeError(error: ErrorInfo, lang: Lang): { title: string; what: string; todo: string } {
  const t = translator(lang);
  const kind = kindOf(error);
  const k = (part: "title" | "what" | "todo") => t(`errorPage.${kind}.${part}` as StringKey);
  // A refusal says why, in the reader's language (the policy's reasons are known codes).
  const reason = kind === "forbidden" ? reasonText(error.message, lang) : null;
  const translatedReason = reason && reason !== error.message ? reason : lang === "fr" ? reason : null;
  return { title: k("title"), what: translatedReason ?? k("what"), todo: k("todo") };
}

export function ErrorContent({ error, lang, requestId }: { error: ErrorInfo; lang: Lang; requestId?: string | null }) {
  const t = translator(lang);
  const { title, what, todo } = describeError(error, lang);
  return (
    <div className="card mx-auto max-w-xl" role="alert" data-testid="error-page" data-status={error.status}>
      <p className="text-sm font-semibold text-brand-700">
        {t("errorPage.status")} {error.status}
      </p>
      <h1 className="mt-1 text-2xl font-bold">{title}</h1>
      <p className="mt-3 text-slate-700">{what}</p>
      <p className="mt-2 text-slate-700">{todo}</p>
      {requestId ? (
        <p className="mt-2 text-xs text-slate-500">
          {t("errorPage.reference")} <code className="font-mono">{requestId}</code>
        </p>
      ) : null}
      <a className="btn mt-6" href="/">
        {t("error.back")}
      </a>
    </div>
  );
}
