/** What the vault tells users, by error code; shared by the server and the upload form (no server imports here). */
export const MAX_UPLOAD_BYTES = 50 * 1024 * 1024;
export const PIXEL_LIMIT_MEGAPIXELS = 100;

export const VAULT_MESSAGES = {
  too_large: `Fichier trop volumineux : la limite est de ${MAX_UPLOAD_BYTES / 1024 / 1024} Mo.`,
  unsupported_type: "Type de fichier non pris en charge : seuls JPEG, PNG et DICOM (Part 10) sont acceptés.",
  empty: "Fichier vide.",
  too_many_pixels: `Image trop grande : plus de ${PIXEL_LIMIT_MEGAPIXELS} millions de pixels.`,
  no_dimensions: "Dimensions de l'image introuvables : fichier tronqué ou corrompu ?",
  dicom_without_image:
    "Ce fichier DICOM ne contient pas d'image (compte rendu structuré, plan de traitement, DICOMDIR…) : seules les images sont acceptées.",
  bad_dicom: "Fichier DICOM illisible (en-tête corrompu).",
  storage_unavailable: "Stockage des images indisponible : réessayez dans quelques instants. Rien n'a été enregistré.",
  integrity_failure: "Échec du contrôle d'intégrité : l'image stockée a été altérée. Aucun octet non authentifié n'est envoyé.",
  erased: "Cette image a été effacée (droit à l'effacement).",
  csrf: "Jeton de sécurité (CSRF) manquant ou invalide : rechargez la page et réessayez.",
  invalid: "Envoi invalide.",
} as const;

export type VaultErrorCode = keyof typeof VAULT_MESSAGES;

/** The same messages in English (pages in English translate the code at the edge). */
export const VAULT_MESSAGES_EN: Record<VaultErrorCode, string> = {
  too_large: `File too large: the limit is ${MAX_UPLOAD_BYTES / 1024 / 1024} MB.`,
  unsupported_type: "File type not supported: only JPEG, PNG and DICOM (Part 10) are accepted.",
  empty: "Empty file.",
  too_many_pixels: `Image too large: more than ${PIXEL_LIMIT_MEGAPIXELS} million pixels.`,
  no_dimensions: "The image's dimensions cannot be found: truncated or corrupt file?",
  dicom_without_image: "This DICOM file holds no image (structured report, treatment plan, DICOMDIR…): only images are accepted.",
  bad_dicom: "Unreadable DICOM file (corrupt header).",
  storage_unavailable: "Image storage unavailable: try again in a few moments. Nothing was saved.",
  integrity_failure: "Integrity check failed: the stored image was altered. No unauthenticated byte is sent.",
  erased: "This image was erased (right to erasure).",
  csrf: "Security token (CSRF) missing or invalid: reload the page and try again.",
  invalid: "Invalid upload.",
};

export function vaultMessage(code: string, lang: "fr" | "en" = "fr"): string {
  const messages: Record<string, string> = lang === "en" ? VAULT_MESSAGES_EN : VAULT_MESSAGES;
  return messages[code] ?? messages.invalid!;
}
