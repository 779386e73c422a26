import { Form, Link } from "@remix-run/react";
import type { ReactNode } from "react";
import { CsrfInput } from "./forms";
import { useT } from "./shell";

const TONES = {
  /** Cannot be undone (erase, reject, disable). */
  red: { box: "bg-red-50 ring-red-200", text: "text-red-900" },
  /** Can be undone later (a withdrawn consent can be granted again). */
  amber: { box: "bg-amber-50 ring-amber-200", text: "text-amber-900" },
};

/**
 * The confirmation step of a destructive action, the same on every page and without JavaScript: the action's first
 * POST (or a link) comes back to the page with this step open; it says what will happen, then confirms (a POST of
 * `fields` plus `confirm=1`, which alone performs the action) or cancels (a link back).
 */
export function ConfirmStep({
  id = "confirmation",
  testId,
  heading: Heading = "h2",
  title,
  children,
  action,
  fields,
  confirmLabel,
  cancelTo,
  tone = "red",
}: {
  /** The element's id, the fragment the first POST redirects to. */
  id?: string;
  testId: string;
  heading?: "h2" | "h3";
  title: ReactNode;
  /** What it does (paragraphs). */
  children: ReactNode;
  action: string;
  fields: Record<string, string>;
  confirmLabel: string;
  cancelTo: string;
  tone?: keyof typeof TONES;
}) {
  const t = useT();
  const colours = TONES[tone];
  return (
    <div id={id} className={`rounded-md p-4 text-sm ring-1 ${colours.box}`} role="group" aria-labelledby={`${id}-title`} data-testid={testId}>
      <Heading id={`${id}-title`} className={`font-semibold break-words ${colours.text}`}>
        {title}
      </Heading>
      <div className={`mt-1 space-y-1 ${colours.text}`}>{children}</div>
      <div className="mt-3 flex flex-wrap items-center gap-3">
        <Form method="post" action={action}>
          <CsrfInput />
          {Object.entries(fields).map(([name, value]) => (
            <input key={name} type="hidden" name={name} value={value} />
          ))}
          <input type="hidden" name="confirm" value="1" />
          <button type="submit" className="btn bg-red-700 hover:bg-red-800">
            {confirmLabel}
          </button>
        </Form>
        <Link to={cancelTo} className="text-brand-700 underline">
          {t("common.cancel")}
        </Link>
      </div>
    </div>
  );
}
