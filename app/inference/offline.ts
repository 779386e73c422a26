/**
 * ONNX Runtime stays offline. Since 1.29 its Linux and macOS builds carry Microsoft's 1DS telemetry
 * (microsoft/onnxruntime#27379): on the first session it writes a device identifier and an event cache under
 * `~/.cache/Microsoft/DeveloperTools/.onnxruntime/` and uploads process, session and model events to
 * `https://mobile.events.data.microsoft.com/` — a US cloud service, which a hospital's platform must not contact.
 * `ORT_DISABLE_TELEMETRY=1` turns all of it off (no uploader, no identifier, no cache) when set before the runtime
 * first initialises, which onnxruntime-node does on the first `InferenceSession.create()` — in any thread, since the
 * variable is read from the process's environment. Every path that creates a session calls this first;
 * `app/inference/offline.test.ts` shows the difference on a fresh home directory.
 */
export function keepOnnxRuntimeOffline(): void {
  process.env.ORT_DISABLE_TELEMETRY = "1";
}
