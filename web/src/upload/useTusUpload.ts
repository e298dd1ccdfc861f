// One resumable upload with tus-js-client against the backend's tus endpoint. The SIWE
// session cookie authenticates it (same origin, so the browser sends it with tus's XHRs).
// tus-js-client stores each file's upload URL under its fingerprint (name, type, size,
// mtime, endpoint) in localStorage, so choosing the same file after a reload resumes the
// same upload instead of sending every byte again.
import { useCallback, useEffect, useRef, useState } from "react";
import { type DetailedError, Upload as TusUpload } from "tus-js-client";
import { reportUnauthorized } from "../api/client";

/** The backend's tus endpoint (docs/api/clips.md). */
export const TUS_ENDPOINT = "/api/v1/uploads/";
/** Bytes per PATCH: big enough to be quick, small enough that an interruption costs little. */
export const CHUNK_SIZE = 8 * 1024 * 1024;
/** Waits between automatic retries of a failed request (then it reports an error). */
const RETRY_DELAYS_MS = [0, 1000, 3000, 5000];

/** Where an upload is. */
export type UploadPhase = "waiting" | "starting" | "uploading" | "paused" | "done" | "error";

/** An upload's state for display, with its controls. */
export interface TusState {
  readonly phase: UploadPhase;
  readonly sent: number;
  readonly total: number;
  /** The backend's upload id (last segment of the tus URL) once created. */
  readonly uploadId: string | null;
  /** True when a previous upload of this file was found and continued. */
  readonly resumed: boolean;
  readonly error: string | null;
  readonly pause: () => void;
  readonly resume: () => void;
}

function idOf(url: string | null): string | null {
  if (url === null) return null;
  return url.replace(/\/+$/, "").split("/").pop() ?? null;
}

/** The backend's own sentence from an error body (`{"error": {"message"}}`), if any. */
function serverMessage(body: string): string | null {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed !== "object" || parsed === null || !("error" in parsed)) return null;
    const error = (parsed as { error: unknown }).error;
    if (typeof error !== "object" || error === null || !("message" in error)) return null;
    const message = (error as { message: unknown }).message;
    return typeof message === "string" && message !== "" ? message : null;
  } catch {
    return null;
  }
}

function errorText(error: Error | DetailedError): string {
  const response = "originalResponse" in error ? error.originalResponse : null;
  if (response === null) return "The upload was interrupted: resume to try again.";
  const status = response.getStatus();
  if (status === 401) return "Your session ended: sign in again, then resume.";
  const said = serverMessage(String(response.getBody() ?? ""));
  return said ?? `The server refused the upload (HTTP ${status}).`;
}

/**
 * Upload `file` once `mayStart` (the page lets a few run at once: the backend limits
 * each wallet's unfinished uploads); pause and resume on demand.
 */
export function useTusUpload(file: File, mayStart: boolean): TusState {
  const [phase, setPhase] = useState<UploadPhase>(mayStart ? "starting" : "waiting");
  const [sent, setSent] = useState(0);
  const [uploadId, setUploadId] = useState<string | null>(null);
  const [resumed, setResumed] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const upload = useRef<TusUpload | null>(null);

  useEffect(() => {
    if (!mayStart) return undefined;
    let live = true;
    setPhase((old) => (old === "waiting" ? "starting" : old));
    const tus = new TusUpload(file, {
      endpoint: new URL(TUS_ENDPOINT, window.location.origin).href,
      chunkSize: CHUNK_SIZE,
      retryDelays: RETRY_DELAYS_MS,
      metadata: { filename: file.name, filetype: file.type || "application/octet-stream" },
      // A finished upload becomes a clip; resuming it later would only find it consumed.
      removeFingerprintOnSuccess: true,
      onUploadUrlAvailable: () => live && setUploadId(idOf(tus.url)),
      onProgress: (bytes) => live && setSent(bytes),
      onSuccess: () => {
        if (!live) return;
        setSent(file.size);
        setUploadId(idOf(tus.url));
        setPhase("done");
      },
      onError: (failure) => {
        if (!live) return;
        // tus's requests bypass the API client: an ended session is reported from here.
        if ("originalResponse" in failure && failure.originalResponse?.getStatus() === 401) reportUnauthorized();
        setError(errorText(failure));
        setPhase("error");
      },
    });
    upload.current = tus;
    tus
      .findPreviousUploads()
      .then((previous) => {
        if (!live) return;
        const last = previous[previous.length - 1];
        if (last !== undefined) {
          tus.resumeFromPreviousUpload(last);
          setResumed(true);
          setUploadId(idOf(last.uploadUrl));
        }
        setPhase("uploading");
        tus.start();
      })
      .catch(() => {
        if (!live) return;
        setPhase("uploading");
        tus.start();
      });
    return () => {
      // Leaving the page (or React remounting in development) stops sending; the
      // upload stays on the server and is found again by its fingerprint.
      live = false;
      void tus.abort();
      upload.current = null;
    };
  }, [file, mayStart]);

  const pause = useCallback(() => {
    void upload.current?.abort();
    setPhase("paused");
  }, []);
  const resume = useCallback(() => {
    setError(null);
    setPhase("uploading");
    upload.current?.start();
  }, []);

  return { phase, sent, total: file.size, uploadId, resumed, error, pause, resume };
}
