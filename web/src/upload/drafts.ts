// Annotation drafts kept in localStorage per file, so a reload (after which the upload
// resumes when the same file is chosen again) does not lose what was typed either.
import type { TextRow } from "./CameraPathEditor";
import type { FormValues } from "./schemaForm";

/** What a draft holds. */
export interface Draft {
  readonly values: FormValues;
  readonly pathRows: readonly TextRow[];
  readonly pathScale: "metric" | "arbitrary";
}

const PREFIX = "shotbank:annotation-draft:";
/** Larger drafts are not stored (a long camera path belongs in a path file). */
const MAX_DRAFT_CHARS = 256 * 1024;

/** The storage key of `file`'s draft: the same file properties tus fingerprints. */
export function draftKey(file: Pick<File, "name" | "size" | "lastModified">): string {
  return `${PREFIX}${file.name}:${file.size}:${file.lastModified}`;
}

function storage(): Storage | null {
  try {
    return typeof window === "undefined" ? null : window.localStorage;
  } catch {
    return null; // storage disabled by the browser's settings
  }
}

/** The stored draft, or null when there is none or it is unreadable. */
export function loadDraft(key: string): Draft | null {
  const text = storage()?.getItem(key) ?? null;
  if (text === null) return null;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null) return null;
    const { values, pathRows, pathScale } = parsed as Partial<Draft>;
    if (typeof values !== "object" || values === null || !Array.isArray(pathRows)) return null;
    return { values, pathRows, pathScale: pathScale === "arbitrary" ? "arbitrary" : "metric" };
  } catch {
    return null;
  }
}

/** Store `draft` (silently not when storage is full, disabled or the draft too large). */
export function saveDraft(key: string, draft: Draft): void {
  const text = JSON.stringify(draft);
  if (text.length > MAX_DRAFT_CHARS) return;
  try {
    storage()?.setItem(key, text);
  } catch {
    // Quota exceeded: the draft is a convenience, the form still works.
  }
}

/** Forget the draft (once its clip is submitted). */
export function dropDraft(key: string): void {
  storage()?.removeItem(key);
}
