/** Messages between the decode pool (main thread) and its workers. */
export type DecodeJob =
  /** Header checks only (syntax, photometry, pixel budget): is this DICOM decodable? */
  | { op: "probe"; bytes: Uint8Array; pixelLimit: number }
  /** First frame at full precision, display values in [0, 1] (grey; colour → BT.601 luma). */
  | { op: "values"; bytes: Uint8Array; pixelLimit: number }
  /** A PNG (grey or RGB) at most maxSide × maxSide, no metadata. */
  | { op: "png"; bytes: Uint8Array; contentType: string; maxSide: number; pixelLimit: number }
  /** The model's input: size × size samples (fit "fill"). */
  | { op: "model"; bytes: Uint8Array; contentType: string; size: number; pixelLimit: number };

export interface FrameInfo {
  /** Full-size dimensions of the image read. */
  width: number;
  height: number;
  /** Number of frames declared; the first is read. */
  frames: number;
  transferSyntax: string | null;
  colour: boolean;
}

export type DecodeReply =
  | ({ op: "probe" } & FrameInfo)
  | ({ op: "values"; values: Float32Array } & FrameInfo)
  | ({ op: "png"; png: Uint8Array<ArrayBuffer> } & Omit<FrameInfo, "transferSyntax">)
  | ({ op: "model"; samples: Uint16Array | Uint8Array; channels: number; maxValue: number } & FrameInfo);

export type ReplyOf<Op extends DecodeJob["op"]> = Extract<DecodeReply, { op: Op }>;
