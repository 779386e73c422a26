import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { handleDicomweb } from "../dicomweb/router.server";

/** DICOMweb (PS3.18) at /dicomweb: QIDO-RS and WADO-RS (GET), STOW-RS (POST). See app/dicomweb/. */
export const loader = (args: LoaderFunctionArgs) => handleDicomweb(args);
export const action = (args: ActionFunctionArgs) => handleDicomweb(args);
