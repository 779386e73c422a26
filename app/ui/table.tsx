import { useNavigate } from "@remix-run/react";
import type { MouseEvent, ReactNode } from "react";

/**
 * A horizontally scrollable region for a wide table: reachable and scrollable by keyboard (focusable, named for
 * screen readers), and `relative` so that visually hidden cells (`sr-only`, absolutely positioned) stay inside it
 * instead of widening the whole page on a phone.
 *
 * Its rows may link with plain `<a href>`: once JavaScript runs, a click on one of them navigates within the app as a
 * Remix `<Link>` would (see {@link useInAppLinks}); without it, the link is an ordinary link.
 */
export function ScrollRegion({ label, children, className = "" }: { label: string; children: ReactNode; className?: string }) {
  const followInApp = useInAppLinks();
  return (
    // Not a control: the click handler only takes over the clicks of the links inside (keyboard included: Enter on a
    // focused link is a click), which are reachable on their own.
    <div
      onClick={followInApp}
      role="region"
      aria-label={label}
      tabIndex={0}
      className={`relative max-w-full overflow-x-auto focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-brand-600 ${className}`}
    >
      {children}
    </div>
  );
}

/**
 * A click handler for every plain link inside an element: a click (or Enter on a focused link) that the browser
 * would follow in this tab to a page of this origin navigates in the app instead, as `<Link>` does; a modified click
 * (new tab, download…), another target or another origin is left to the browser, and so is a click a `<Link>` inside
 * already handled (its handler runs first). A `<Link>` per row cost the server ≈ 30 µs of render each (path
 * resolution, router contexts): plain links took ≈ 17 % off the CPU of the 48-patient list (held servers side by
 * side, docs/decisions/2026-12-01-request-path.md).
 */
export function useInAppLinks() {
  const navigate = useNavigate();
  return (event: MouseEvent<HTMLElement>) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target instanceof Element ? event.target.closest("a") : null;
    if (!link || !event.currentTarget.contains(link) || link.hasAttribute("download")) return;
    if ((link.target && link.target !== "_self") || link.origin !== window.location.origin) return;
    event.preventDefault();
    navigate(link.pathname + link.search + link.hash);
  };
}
