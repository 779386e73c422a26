/** Dates, numbers and sizes for pages: see app/i18n/format.ts (one cached Intl formatter per language). */
export {
  formatBytes,
  formatContentType,
  formatDate,
  formatDateSeconds,
  formatDicomDate,
  formatNumber,
  formatPercent,
  formatTransferSyntax,
} from "../i18n/format";
