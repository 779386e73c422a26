import type { ReactNode } from "react";

/**
 * A horizontally scrollable region for a wide table: reachable and scrollable by keyboard (focusable, named for
 * screen readers), and `relative` so that visually hidden cells (`sr-only`, absolutely positioned) stay inside it
 * instead of widening the whole page on a phone.
 */
export function ScrollRegion({ label, children, className = "" }: { label: string; children: ReactNode; className?: string }) {
  return (
    <div
      role="region"
      aria-label={label}
      tabIndex={0}
      className={`relative max-w-full overflow-x-auto focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-brand-600 ${className}`}
    >
      {children}
    </div>
  );
}
