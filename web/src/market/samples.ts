// A few rows of a version's manifest, for previews: read from the start of the public
// manifest.jsonl and stop early, so a version of millions of rows costs one small read.

/** What a preview shows of one manifest row. */
export interface SamplePreview {
  readonly clipId: string;
  readonly durationS: number | null;
  readonly width: number | null;
  readonly height: number | null;
  readonly cameraMove: string | null;
  readonly quality: number | null;
}

/** At most this many bytes of the manifest are read for previews. */
export const PREVIEW_BYTES = 256 * 1024;

const num = (value: unknown): number | null => (typeof value === "number" && Number.isFinite(value) ? value : null);

/** One manifest line as a preview, or `null` when it is not a well-formed row. */
export function previewOf(line: string): SamplePreview | null {
  let row: unknown;
  try {
    row = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof row !== "object" || row === null) return null;
  const record = row as Record<string, unknown>;
  const clipId = record.clip_id;
  if (typeof clipId !== "string" || !/^[A-Za-z0-9_-]{1,128}$/.test(clipId)) return null;
  const media = (typeof record.media === "object" && record.media !== null ? record.media : {}) as Record<string, unknown>;
  const annotation = (typeof record.annotation === "object" && record.annotation !== null ? record.annotation : {}) as Record<string, unknown>;
  const camera = (typeof annotation.camera === "object" && annotation.camera !== null ? annotation.camera : {}) as Record<string, unknown>;
  const scores = (typeof record.scores === "object" && record.scores !== null ? record.scores : {}) as Record<string, unknown>;
  return {
    clipId,
    durationS: num(media.duration_s),
    width: num(media.width),
    height: num(media.height),
    cameraMove: typeof camera.movement === "string" ? camera.movement : null,
    quality: num(scores.quality),
  };
}

/** The first `count` complete rows of a manifest read as a stream of bytes. */
export async function readPreviews(body: ReadableStream<Uint8Array>, count: number): Promise<SamplePreview[]> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let read = 0;
  try {
    while (text.split("\n").length <= count && read < PREVIEW_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      read += value.byteLength;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    // Stop the download: only the first rows are wanted.
    await reader.cancel().catch(() => undefined);
  }
  const lines = text.split("\n");
  // The last piece may be a row cut by the read; complete rows end with "\n".
  const complete = lines.slice(0, -1);
  return complete
    .slice(0, count)
    .map(previewOf)
    .filter((preview): preview is SamplePreview => preview !== null);
}
