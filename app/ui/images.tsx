import { useRouteLoaderData } from "@remix-run/react";
import type { loader as rootLoader } from "../root";
import { formatBytes, formatContentType, formatDate, formatNumber } from "./format";
import { useT } from "./shell";
import { ScrollRegion } from "./table";

export interface ImageListItem {
  id: string;
  contentType: string;
  size: number;
  width: number | null;
  height: number | null;
  dicom: { modality?: string; viewPosition?: string; laterality?: string } | null;
  createdAt: string | Date;
}

export { formatBytes };

/** A patient's images; `viewRefusal` (e.g. consent withdrawn) replaces the links with the reason. */
export function ImageList({ images, viewRefusal }: { images: ImageListItem[]; viewRefusal?: string | null }) {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  if (images.length === 0) return <p className="mt-2 text-sm text-slate-600">{t("images.none")}</p>;
  return (
    <ScrollRegion label={t("patient.images")} className="mt-3">
    <table className="min-w-full divide-y divide-slate-200 text-sm">
      <thead className="text-left text-slate-600">
        <tr>
          <th scope="col" className="py-2 pr-3 font-medium">{t("patients.created")}</th>
          <th scope="col" className="py-2 pr-3 font-medium">{t("images.type")}</th>
          <th scope="col" className="py-2 pr-3 font-medium">{t("images.dimensions")}</th>
          <th scope="col" className="py-2 pr-3 font-medium">{t("images.size")}</th>
          <th scope="col" className="py-2"><span className="sr-only">{t("images.view")}</span></th>
        </tr>
      </thead>
      <tbody className="divide-y divide-slate-100">
        {images.map((img) => (
          <tr key={img.id} data-image-id={img.id}>
            <td className="py-2 pr-3">{formatDate(img.createdAt, lang)}</td>
            <td className="py-2 pr-3">
              {formatContentType(img.contentType)}
              {img.dicom ? (
                <span className="ml-1 text-slate-500">
                  {[img.dicom.modality, img.dicom.viewPosition, img.dicom.laterality].filter(Boolean).join(" · ")}
                </span>
              ) : null}
            </td>
            <td className="py-2 pr-3">{img.width && img.height ? `${formatNumber(img.width, lang)} × ${formatNumber(img.height, lang)}` : "—"}</td>
            <td className="py-2 pr-3">{formatBytes(img.size, lang)}</td>
            <td className="py-2 text-right">
              {viewRefusal ? (
                <span className="text-xs text-slate-500" title={viewRefusal}>{t("images.refused")}</span>
              ) : (
                <a className="text-brand-700 underline" href={`/images/${img.id}`}>{t("images.view")}</a>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
    </ScrollRegion>
  );
}
