/**
 * The DIMSE adapter: a C-ECHO and C-STORE SCP (dcmjs-dimse) on DICOM_PORT with AE title NEXUS. Like a route, it
 * parses (association, presentation contexts, the data set as it streams in) and hands each instance to the same
 * path as an upload (app/dicomweb/ingest.server.ts: patient match, identity check, exam filing, encryption, one audit
 * event with the machine account or calling AE as actor). It never holds a whole instance in memory: the data set's
 * fragments flow into the vault while they arrive.
 *
 * Who may associate: the calling AE titles of DICOM_ALLOWED_AETS; when unset, any calling AE title from a loopback
 * address and no other. A calling AE title that is a machine account's acts as that account (its scopes apply);
 * another allowed one acts as the built-in "DIMSE reception" account (store only), named by its AE title.
 */
import { randomUUID } from "node:crypto";
import { PassThrough, type Writable } from "node:stream";
import type { Socket } from "node:net";
import dimse from "dcmjs-dimse";
import { eq } from "drizzle-orm";
import type { Actor } from "../accounts/actor";
import { machineByAeTitle } from "../accounts/machines.server";
import { hashPassword } from "../accounts/password.server";
import { loadActor } from "../accounts/users.server";
import { config } from "../config.server";
import { db } from "../db/db.server";
import { users } from "../db/schema";
import { receiveInstance, type InstanceResult } from "../dicomweb/ingest.server";
import type { Ctx } from "../http/context.server";
import { MAX_UPLOAD_BYTES } from "../vault/messages";

const { Server, Scp, Dataset } = dimse;
const { CEchoResponse, CStoreResponse } = dimse.responses;
const { Status, PresentationContextResult, RejectResult, RejectSource, RejectReason, TransferSyntax, SopClass, StorageClass } = dimse.constants;

const DIMSE_ACCOUNT_EMAIL = "dimse@machines.nexus";

/** Transfer syntaxes accepted as proposed: instances are stored as received (never transcoded). */
const ACCEPTED_SYNTAXES = new Set<string>(Object.values(TransferSyntax as Record<string, string>));
const STORAGE_CLASSES = new Set<string>(Object.values(StorageClass as Record<string, string>));

export interface DimseOptions {
  port: number;
  host: string;
  aeTitle: string;
  /** null: any calling AE title from loopback only. */
  allowedAets: string[] | null;
  maxAssociations: number;
}

export function dimseOptionsFromConfig(): DimseOptions | null {
  if (config.DICOM_PORT === undefined) return null;
  const allowed = config.DICOM_ALLOWED_AETS?.split(",").map((s) => s.trim()).filter(Boolean) ?? null;
  return {
    port: config.DICOM_PORT,
    host: config.DICOM_HOST,
    aeTitle: config.DICOM_AE_TITLE,
    allowedAets: allowed && allowed.length ? allowed : null,
    maxAssociations: config.DICOM_MAX_ASSOCIATIONS,
  };
}

const isLoopback = (address: string | undefined) =>
  !!address && (address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127."));

/** DICOM_ALLOWED_AETS when set; unset (null), any calling AE title from a loopback address and no other. */
export function callingAllowed(callingAe: string, remoteAddress: string | undefined, allowedAets: string[] | null): boolean {
  return allowedAets ? allowedAets.includes(callingAe) : isLoopback(remoteAddress);
}

/** The built-in account unmapped (but allowed) calling AE titles act as: store only. */
async function receptionAccount(): Promise<string> {
  const [row] = await db.select({ id: users.id }).from(users).where(eq(users.email, DIMSE_ACCOUNT_EMAIL));
  if (row) return row.id;
  const passwordHash = await hashPassword(randomUUID() + randomUUID());
  const [created] = await db
    .insert(users)
    .values({ email: DIMSE_ACCOUNT_EMAIL, name: "Réception DIMSE", role: "system", passwordHash, scopes: ["store"] })
    .onConflictDoNothing()
    .returning({ id: users.id });
  if (created) return created.id;
  const [again] = await db.select({ id: users.id }).from(users).where(eq(users.email, DIMSE_ACCOUNT_EMAIL));
  return again!.id;
}

/** The C-STORE status for an instance's outcome (PS3.4 B.2.3), with its reason as the error comment. */
function statusOf(result: InstanceResult): { status: number; comment?: string } {
  if (result.ok) return { status: Status.Success };
  // DICOM LO: 64 characters.
  return { status: result.reason, comment: `${result.code}: ${result.message}`.slice(0, 64) };
}

export interface RunningScp {
  port: number;
  close(): Promise<void>;
}

export async function startDimse(options: DimseOptions): Promise<RunningScp> {
  // The library's own log lines would echo AE titles and UIDs to stdout: off (Nexus logs what it needs).
  dimse.log.disableAll();
  const receptionId = await receptionAccount();
  let open = 0;

  class NexusScp extends Scp {
    private actor: Actor | null = null;
    private callingAe = "";
    private counted = false;
    private pending: Promise<InstanceResult> | null = null;
    private remote: string | undefined;

    constructor(socket: Socket, opts?: Record<string, unknown>) {
      super(socket, opts);
      this.remote = socket.remoteAddress;
      socket.once("close", () => {
        if (this.counted) open--;
      });
    }

    override associationRequested(association: dimse.association.Association) {
      void this.decide(association);
    }

    private reject(reason: number, transient = false) {
      this.sendAssociationReject(transient ? RejectResult.Transient : RejectResult.Permanent, RejectSource.ServiceUser, reason);
    }

    private async decide(association: dimse.association.Association) {
      const calling = association.getCallingAeTitle().trim();
      const called = association.getCalledAeTitle().trim();
      this.callingAe = calling;
      if (called !== options.aeTitle) return this.reject(RejectReason.CalledAeNotRecognized);
      if (!callingAllowed(calling, this.remote, options.allowedAets)) return this.reject(RejectReason.CallingAeNotRecognized);
      if (open >= options.maxAssociations) {
        return this.sendAssociationReject(RejectResult.Transient, RejectSource.ServiceProviderPresentation, RejectReason.LocalLimitExceeded);
      }
      const machine = await machineByAeTitle(calling).catch(() => null);
      const base = machine ?? (await loadActor(receptionId));
      if (!base) return this.reject(RejectReason.NoReasonGiven);
      this.actor = machine ? base : { ...base, name: `AE ${calling}` };
      this.counted = true;
      open++;
      association.setMaxPduLength(64 * 1024);
      for (const { id } of association.getPresentationContexts()) {
        const context = association.getPresentationContext(id);
        const abstract = context.getAbstractSyntaxUid();
        if (abstract !== SopClass.Verification && !STORAGE_CLASSES.has(abstract)) {
          context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
          continue;
        }
        const syntaxes = context.getTransferSyntaxUids();
        // Prefer what the sender proposed first: its native encoding is what gets stored, byte for byte.
        const chosen = syntaxes.find((s) => ACCEPTED_SYNTAXES.has(s));
        if (chosen) context.setResult(PresentationContextResult.Accept, chosen);
        else context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
      }
      this.sendAssociationAccept();
    }

    override associationReleaseRequested() {
      this.sendAssociationReleaseResponse();
    }

    override cEchoRequest(request: dimse.requests.CEchoRequest, callback: (response: dimse.responses.CEchoResponse) => void) {
      const response = CEchoResponse.fromRequest(request);
      response.setStatus(Status.Success);
      callback(response);
    }

    private ctx(): Ctx {
      return {
        request: new Request("http://dimse.invalid/"),
        channel: "api",
        info: { requestId: randomUUID(), ip: this.remote ?? null, userAgent: `DIMSE ${this.callingAe}` },
        actor: this.actor,
        tokenId: null,
      };
    }

    /** The data set streams into the vault while it arrives, behind a Part 10 file meta header built here. */
    override createStoreWritableStream(context: dimse.association.PresentationContext, request: dimse.requests.CStoreRequest): Writable {
      const pass = new PassThrough({ highWaterMark: 1024 * 1024 });
      const meta = fileMeta(request.getAffectedSopClassUid(), request.getAffectedSopInstanceUid(), context.getAcceptedTransferSyntaxUid()!);
      const iterator = pass.iterator({ destroyOnReturn: false });
      const data = (async function* () {
        yield meta;
        yield* { [Symbol.asyncIterator]: () => iterator };
      })();
      this.pending = receiveInstance(this.ctx(), data, { source: "dimse", callingAe: this.callingAe })
        .catch((err): InstanceResult => {
          console.error(`[dimse] C-STORE from ${this.callingAe} failed: ${(err as Error).message}`);
          return { ok: false, reason: 0x0110, code: "processing", message: "Erreur de traitement." };
        })
        .finally(() => {
          // Whatever the ingest did not read (a refused or oversize instance) is dropped, so the sender can finish.
          pass.resume();
        });
      return pass;
    }

    override createDatasetFromStoreWritableStream(writable: Writable, _context: unknown, callback: (dataset: dimse.Dataset) => void) {
      writable.end();
      callback(new Dataset({}));
    }

    override cStoreRequest(request: dimse.requests.CStoreRequest, callback: (response: dimse.responses.CStoreResponse) => void) {
      const pending = this.pending;
      this.pending = null;
      void (async () => {
        const result = pending ? await pending : ({ ok: false, reason: 0x0110, code: "processing", message: "Aucune donnée reçue." } as InstanceResult);
        const response = CStoreResponse.fromRequest(request);
        const { status, comment } = statusOf(result);
        response.setStatus(status);
        if (comment) response.setErrorComment(comment);
        callback(response);
      })();
    }

    override abort() {
      this.pending = null;
    }
  }

  const server = new Server(NexusScp as unknown as typeof Scp);
  const opts = { associationTimeout: 30_000, pduTimeout: 60_000, connectTimeout: 10_000 };
  await new Promise<void>((resolve, reject) => {
    server.once("listening", () => resolve());
    server.once("networkError", (e: Error) => reject(e));
    // dcmjs-dimse hands its first argument to net.Server#listen: an options object binds the configured address.
    server.listen({ port: options.port, host: options.host } as never, opts as never);
  });
  const net = (server as unknown as { server: import("node:net").Server }).server;
  const address = net.address();
  server.on("networkError", (e: Error) => console.warn(`[dimse] ${e.message}`));
  return {
    port: typeof address === "object" && address ? address.port : options.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close();
        resolve();
      }),
  };
}

/** A Part 10 preamble and file meta information (Explicit VR Little Endian) for a data set received by C-STORE. */
export function fileMeta(sopClassUid: string, sopInstanceUid: string, transferSyntaxUid: string): Buffer {
  const element = (tag: number, vr: string, value: Buffer) => {
    const padded = value.length % 2 ? Buffer.concat([value, Buffer.from(vr === "UI" ? [0] : [0x20])]) : value;
    const long = vr === "OB";
    const head = Buffer.alloc(long ? 12 : 8);
    head.writeUInt16LE(0x0002, 0);
    head.writeUInt16LE(tag, 2);
    head.write(vr, 4, "latin1");
    if (long) head.writeUInt32LE(padded.length, 8);
    else head.writeUInt16LE(padded.length, 6);
    return Buffer.concat([head, padded]);
  };
  const ui = (s: string) => Buffer.from(s, "latin1");
  const body = Buffer.concat([
    element(0x0001, "OB", Buffer.from([0, 1])),
    element(0x0002, "UI", ui(sopClassUid)),
    element(0x0003, "UI", ui(sopInstanceUid)),
    element(0x0010, "UI", ui(transferSyntaxUid)),
    element(0x0012, "UI", ui("2.25.229629856131424185409466263233520395837")),
    element(0x0013, "SH", ui("NEXUS_DIMSE")),
  ]);
  const groupLength = Buffer.alloc(12);
  groupLength.writeUInt16LE(0x0002, 0);
  groupLength.writeUInt16LE(0x0000, 2);
  groupLength.write("UL", 4, "latin1");
  groupLength.writeUInt16LE(4, 6);
  groupLength.writeUInt32LE(body.length, 8);
  return Buffer.concat([Buffer.alloc(128), Buffer.from("DICM", "latin1"), groupLength, body]);
}

export const DIMSE_MAX_INSTANCE_BYTES = MAX_UPLOAD_BYTES;
