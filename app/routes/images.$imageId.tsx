import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { Form, Link, useLoaderData, useRouteLoaderData } from "@remix-run/react";
import { pageContext, perform, readMutation } from "../http/context.server";
import { idParam } from "../http/params.server";
import { authorize } from "../policy/policy.server";
import type { loader as rootLoader } from "../root";
import { vault } from "../vault/instance.server";
import { loadImage } from "../vault/serve.server";
import { formatDate } from "../ui/format";
import { Alert, CsrfInput } from "../ui/forms";
import { formatBytes } from "../ui/images";
import { useT } from "../ui/shell";

export const meta: MetaFunction = () => [{ title: "Mammographie — Nexus" }];

export async function loader(args: LoaderFunctionArgs) {
  const ctx = await pageContext(args);
  const imageId = idParam(ctx, args.params.imageId);
  const row = await loadImage(imageId);
  const resource = { type: "image", id: imageId, patientId: row?.patientId } as const;
  return perform(ctx, "image.read", resource, async () => {
    const erase = await authorize(ctx.actor, "image.erase", resource);
    return {
      image: {
        id: row!.id,
        patientId: row!.patientId,
        contentType: row!.contentType,
        size: row!.size,
        sha256: row!.sha256,
        width: row!.width,
        height: row!.height,
        bitDepth: row!.bitDepth,
        dicom: row!.dicom,
        createdAt: row!.createdAt,
        erased: Boolean(row!.erasedAt),
      },
      canErase: erase.allowed,
      backTo: ctx.actor!.role === "patient" ? "/mon-dossier" : `/patients/${row!.patientId}`,
    };
  });
}

export async function action(args: ActionFunctionArgs) {
  const ctx = await pageContext(args);
  const imageId = idParam(ctx, args.params.imageId);
  await readMutation(ctx, "image.erase");
  const row = await loadImage(imageId);
  await perform(ctx, "image.erase", { type: "image", id: imageId, patientId: row?.patientId }, () =>
    vault.eraseImage(imageId, ctx.actor!.id),
  );
  return redirect(`/patients/${row!.patientId}?efface=1`, 303);
}

export default function ImagePage() {
  const t = useT();
  const lang = useRouteLoaderData<typeof rootLoader>("root")?.lang ?? "fr";
  const { image, canErase, backTo } = useLoaderData<typeof loader>();
  const file = `/images/${image.id}/fichier`;
  const isDicom = image.contentType === "application/dicom";
  const facts: [string, string][] = [
    [t("images.type"), image.contentType],
    [t("images.dimensions"), image.width && image.height ? `${image.width} × ${image.height} px` : "—"],
    [t("image.bits"), image.bitDepth ? String(image.bitDepth) : "—"],
    [t("images.size"), formatBytes(image.size)],
    ["SHA-256", image.sha256],
    [t("patients.created"), formatDate(image.createdAt, lang)],
    ...(image.dicom
      ? ([
          [t("dicom.modality"), image.dicom.modality ?? "—"],
          [t("dicom.view"), image.dicom.viewPosition ?? "—"],
          [t("dicom.laterality"), image.dicom.laterality ?? "—"],
          [t("dicom.studyDate"), image.dicom.studyDate ?? "—"],
          [t("dicom.transferSyntax"), image.dicom.transferSyntaxUid ?? "—"],
        ] as [string, string][])
      : []),
  ];
  return (
    <div className="space-y-6">
      <div className="flex flex-wrap items-center justify-between gap-3">
        <h1 className="text-2xl font-bold">{t("image.title")}</h1>
        <Link to={backTo} className="text-sm text-brand-700 underline">{t("image.back")}</Link>
      </div>
      {image.erased ? (
        <Alert kind="info">{t("image.erased")}</Alert>
      ) : (
        <div className="grid gap-6 lg:grid-cols-3">
          <figure className="card lg:col-span-2">
            <img
              src={isDicom ? `${file}?apercu=1` : file}
              alt={isDicom ? t("image.preview") : t("image.title")}
              className="mx-auto max-h-[70vh] w-auto bg-black"
            />
            {isDicom ? <figcaption className="mt-2 text-center text-xs text-slate-500">{t("image.preview")}</figcaption> : null}
          </figure>
          <aside className="card space-y-4">
            <h2 className="text-lg font-semibold">{t("image.metadata")}</h2>
            <dl className="grid grid-cols-3 gap-x-2 gap-y-1 text-sm">
              {facts.map(([k, v]) => (
                <div key={k} className="contents">
                  <dt className="text-slate-500">{k}</dt>
                  <dd className="col-span-2 break-all">{v}</dd>
                </div>
              ))}
            </dl>
            <a className="btn-secondary" href={`${file}?telecharger=1`}>{t("image.download")}</a>
            {canErase ? (
              <Form
                method="post"
                onSubmit={(e) => {
                  if (!window.confirm(t("image.eraseConfirm"))) e.preventDefault();
                }}
              >
                <CsrfInput />
                <button type="submit" className="btn bg-red-700 hover:bg-red-800">{t("image.erase")}</button>
              </Form>
            ) : null}
          </aside>
        </div>
      )}
    </div>
  );
}
