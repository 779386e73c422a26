/** Where a sign-in may send the browser afterwards: a same-origin path only (anything else: the home page). */
export function safeRedirectTarget(value: string | null | undefined): string {
  if (!value || !value.startsWith("/") || value.startsWith("//")) return "/";
  // Backslashes, control characters and encoded separators are how browsers get talked off-site.
  if (value.includes("\\") || /%(2f|5c|09|0a|0d|00)/i.test(value)) return "/";
  for (const ch of value) if (ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f) return "/";
  return value;
}
