/**
 * Known open-redirect bypasses (decoded values, as a query parameter or a form field carries them once the server
 * has decoded it): scheme-relative, backslash, control characters, percent-encoded once and twice, schemes.
 */
export const BYPASSES: string[] = [
  "//evil.example",
  "///evil.example",
  "////evil.example",
  "/\\evil.example",
  "/\\/evil.example",
  "\\\\evil.example",
  "\\/evil.example",
  "/\t/evil.example",
  "/\n/evil.example",
  "/\r\n/evil.example",
  "/\u0000/evil.example",
  "/%09/evil.example",
  "/%0d%0a/evil.example",
  "/%0D%0ASet-Cookie:%20a=b",
  "%2F%2Fevil.example",
  "/%2F/evil.example",
  "/%2f%2fevil.example",
  "/%5Cevil.example",
  "/%5cevil.example",
  "/%255Cevil.example",
  "/%252F/evil.example",
  "%252F%252Fevil.example",
  "/%25252F/evil.example",
  "/./%2F/evil.example",
  "/.//evil.example",
  "/..//evil.example",
  "https://evil.example",
  "http:evil.example",
  "https:/evil.example",
  "javascript:alert(1)",
  "JaVaScRiPt:alert(1)",
  " //evil.example",
  "/ /\\evil.example",
  "evil.example",
  "@evil.example",
  "/\u2028/evil.example",
  "/%E2%80%A8/evil.example",
  "/\u00a0/evil.example".replace("\u00a0", "\u0085"),
  "/%",
  "/%E0%A4%A",
];

/** Same-origin paths that must survive unchanged. */
export const SAFE: string[] = ["/", "/patients", "/patients/0b7c9d3e-1c2a-4c53-8f7e-2f0c7b7e4a11?efface=1", "/admin/audit?action=image.read#chaine", "/mon-dossier?q=a%20b"];
