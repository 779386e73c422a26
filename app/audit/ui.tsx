/** Small pieces shared by the admin audit pages (no server imports: this file reaches the browser bundle). */
import { Link } from "@remix-run/react";
import { formatDateSeconds } from "../i18n/format";
import { isPurposeOfUse } from "./purpose";
import { useT } from "../ui/shell";
import type { Role } from "../vocabulary";

/** Date and time to the second, Paris time, in the page's language. */
export function auditDate(value: string | Date, lang: "fr" | "en" = "fr"): string {
  return formatDateSeconds(value, lang);
}

/** The first 8 characters of an id (the whole id stays in the title and the detail page). */
export function shortId(id: string): string {
  return id.length > 13 ? `${id.slice(0, 8)}…` : id;
}

const ROLES = new Set<string>(["admin", "doctor", "patient", "researcher", "system"]);

/** The acting account: name and role (a patient is not named), its id as a link that filters on it. */
export function ActorCell({
  event,
  href,
}: {
  event: { actorId: string | null; actorRole: string | null; actorName: string | null };
  href?: (actorId: string) => string;
}) {
  const t = useT();
  if (!event.actorId) return <span className="text-slate-500">{t("audit.anonymous")}</span>;
  const role = event.actorRole && ROLES.has(event.actorRole) ? t(`role.${event.actorRole as Role}`) : event.actorRole;
  const name = event.actorName ?? (event.actorRole === "patient" ? t("audit.patientActor") : "—");
  return (
    <span>
      {href ? (
        <Link className="text-brand-700 underline" to={href(event.actorId)} title={event.actorId}>
          {name}
        </Link>
      ) : (
        name
      )}
      {role ? <span className="text-slate-500"> · {role}</span> : null}
    </span>
  );
}

export function PurposeLabel({ purpose }: { purpose: string | null }) {
  const t = useT();
  if (!isPurposeOfUse(purpose)) return <span className="text-slate-500">{purpose ?? "—"}</span>;
  return (
    <abbr title={purpose} className="no-underline">
      {t(`audit.purpose.${purpose}`)}
    </abbr>
  );
}
