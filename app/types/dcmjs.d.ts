/** The few parts of dcmjs (no published types) that Nexus uses: reading and writing Part 10 files as DICOM JSON. */
declare module "dcmjs" {
  type DicomJsonDict = Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string; InlineBinary?: string }>;
  interface DicomDictInstance {
    meta: DicomJsonDict;
    dict: DicomJsonDict;
    write(options?: { allowInvalidVRLength?: boolean }): ArrayBuffer;
  }
  const dcmjs: {
    data: {
      DicomMessage: {
        readFile(
          buffer: ArrayBuffer,
          options?: { ignoreErrors?: boolean; untilTag?: string | null; includeUntilTagValue?: boolean; noCopy?: boolean },
        ): { meta: DicomJsonDict; dict: DicomJsonDict };
      };
      DicomDict: new (meta: DicomJsonDict) => DicomDictInstance;
      DicomMetaDictionary: {
        naturalizeDataset(dict: DicomJsonDict): Record<string, unknown>;
        denaturalizeDataset(dataset: Record<string, unknown>): DicomJsonDict;
        uid(): string;
        date(): string;
        time(): string;
      };
    };
  };
  export default dcmjs;
}
