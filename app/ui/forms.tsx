import { useRouteLoaderData } from "@remix-run/react";
import type { InputHTMLAttributes, ReactNode } from "react";
import { fieldMessage } from "../i18n/fields";
import type { loader as rootLoader } from "../root";

/** The hidden CSRF field every mutating form carries (checked by readMutation() on the server). */
export function CsrfInput() {
  const root = useRouteLoaderData<typeof rootLoader>("root");
  return <input type="hidden" name="csrf" value={root?.csrf ?? ""} />;
}

export function Field({
  label,
  name,
  error,
  hint,
  ...input
}: { label: string; name: string; error?: string; hint?: ReactNode } & InputHTMLAttributes<HTMLInputElement>) {
  const id = `field-${name}`;
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  error = fieldMessage(error, lang);
  return (
    <div>
      <label htmlFor={id} className="block text-sm font-medium text-slate-800">
        {label}
      </label>
      <input
        id={id}
        name={name}
        className="input mt-1"
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}-error` : undefined}
        {...input}
      />
      {hint ? <p className="mt-1 text-xs text-slate-500">{hint}</p> : null}
      {error ? (
        <p id={`${id}-error`} className="mt-1 text-sm text-red-700">
          {error}
        </p>
      ) : null}
    </div>
  );
}

export function Alert({ kind, children }: { kind: "error" | "success" | "info"; children: ReactNode }) {
  const styles = {
    error: "bg-red-50 text-red-800 ring-red-200",
    success: "bg-emerald-50 text-emerald-800 ring-emerald-200",
    info: "bg-sky-50 text-sky-800 ring-sky-200",
  }[kind];
  return (
    <div role={kind === "error" ? "alert" : "status"} className={`rounded-md p-3 text-sm ring-1 ${styles}`}>
      {children}
    </div>
  );
}

/** Field errors from a zod parse, keyed by the first path segment. */
export type FieldErrors = Partial<Record<string, string>>;
