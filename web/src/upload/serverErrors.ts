// The backend answers an invalid annotation with 422 `validation_error` and `details:
// [{loc, msg, type}]`, `loc` starting ["body", "annotation", ...]. Each message is shown
// next to the control it is about (or its section), the rest above the form.

/** Messages by field (or section) key, and those that belong to no field. */
export interface MappedErrors {
  readonly fields: Readonly<Record<string, readonly string[]>>;
  readonly general: readonly string[];
}

interface Detail {
  readonly loc: readonly (string | number)[];
  readonly msg: string;
}

function details(body: unknown): Detail[] {
  if (typeof body !== "object" || body === null || !("error" in body)) return [];
  const error = (body as { error: unknown }).error;
  if (typeof error !== "object" || error === null || !("details" in error)) return [];
  const raw = (error as { details: unknown }).details;
  if (!Array.isArray(raw)) return [];
  return raw.flatMap((item: unknown) => {
    if (typeof item !== "object" || item === null) return [];
    const { loc, msg } = item as { loc?: unknown; msg?: unknown };
    if (!Array.isArray(loc) || typeof msg !== "string") return [];
    const parts = loc.filter((part): part is string | number => typeof part === "string" || typeof part === "number");
    return [{ loc: parts, msg }];
  });
}

/** Pydantic prefixes a validator's own message with "Value error, "; people need only the rest. */
function readable(message: string): string {
  return message.replace(/^(Value|Assertion) error, /, "");
}

/**
 * Put each detail of a 422 body on the deepest of `knownKeys` (dotted annotation paths,
 * e.g. `scene.tags`, or section keys) that its `loc` starts with; list indexes are
 * skipped (`scene.tags.3` → `scene.tags`). Details outside the annotation, or about no
 * known key, are `general`, as is the top-level message when there are no details.
 */
export function mapServerErrors(body: unknown, knownKeys: Iterable<string>, fallback: string): MappedErrors {
  const known = new Set(knownKeys);
  const fields: Record<string, string[]> = {};
  const general: string[] = [];
  const found = details(body);
  for (const detail of found) {
    const [where, what, ...rest] = detail.loc;
    let key: string | null = null;
    if (where === "body" && what === "annotation") {
      const path = rest.filter((part): part is string => typeof part === "string");
      for (let length = path.length; length > 0 && key === null; length -= 1) {
        const candidate = path.slice(0, length).join(".");
        if (known.has(candidate)) key = candidate;
      }
    }
    const message = readable(detail.msg);
    if (key === null) {
      const at = detail.loc.filter((part) => part !== "body").join(".");
      general.push(at === "" ? message : `${at}: ${message}`);
    } else {
      (fields[key] ??= []).push(message);
    }
  }
  if (found.length === 0) general.push(fallback);
  return { fields, general };
}
