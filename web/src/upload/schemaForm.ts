// The annotation form is generated from the JSON Schema the backend serves
// (`GET /api/v1/schemas/annotation/v1`), so a new vocabulary term or field shows up here
// without a web release. Only the shapes the annotation schema uses are mapped.

/** A JSON Schema node (the served document is trusted to be a valid 2020-12 schema). */
export type JsonSchema = { readonly [key: string]: unknown };

/** How one field is edited. */
export type FieldKind = "text" | "textarea" | "select" | "number" | "checkbox" | "tags" | "multiselect";

/** One control of the form; `key` is the dotted path in the annotation, e.g. `scene.tags`. */
export interface FieldSpec {
  readonly key: string;
  readonly label: string;
  readonly description: string;
  readonly kind: FieldKind;
  readonly required: boolean;
  readonly options: readonly string[];
  readonly min?: number;
  readonly max?: number;
  readonly integer?: boolean;
  readonly maxLength?: number;
  readonly maxItems?: number;
}

/** A top-level part of the annotation (scene, camera, ...), shown as a fieldset. */
export interface SectionSpec {
  readonly key: string;
  readonly title: string;
  readonly description: string;
  /** Nullable sections (audio) are sent only when the contributor opts in. */
  readonly optional: boolean;
  readonly fields: readonly FieldSpec[];
}

/** What a control holds: text, a checkbox, or the chosen terms of a multi-choice. */
export type FormValue = string | boolean | readonly string[];
/** Every control's value by field key; sections that are opt-in are keyed by section. */
export type FormValues = Readonly<Record<string, FormValue>>;

/** Text longer than this is edited in a textarea. */
const TEXTAREA_FROM = 300;
/** The order sections are shown in (others follow in the schema's order). */
const SECTION_ORDER = ["scene", "camera", "lighting", "audio", "rights"];

function isObject(value: unknown): value is JsonSchema {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function num(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}

/** Follow a local `$ref` (`#/$defs/Name`); other nodes are returned as they are. */
export function resolve(root: JsonSchema, node: JsonSchema): JsonSchema {
  const ref = node["$ref"];
  if (typeof ref !== "string") return node;
  const name = ref.replace(/^#\/\$defs\//, "");
  const defs = root["$defs"];
  const target = isObject(defs) ? defs[name] : undefined;
  if (!isObject(target)) throw new Error(`the annotation schema has no definition ${ref}`);
  // Annotations next to a $ref (title, description) win over the target's.
  const { $ref: _ignored, ...local } = node;
  return { ...resolve(root, target), ...local };
}

/** `anyOf: [X, {type: null}]` → X and whether null is allowed. */
function unwrapNullable(root: JsonSchema, node: JsonSchema): { node: JsonSchema; nullable: boolean } {
  const anyOf = node["anyOf"];
  if (Array.isArray(anyOf)) {
    const options = anyOf.filter(isObject);
    const nonNull = options.filter((option) => option["type"] !== "null");
    if (nonNull.length === 1 && nonNull[0] !== undefined && nonNull.length < options.length) {
      const { anyOf: _ignored, ...local } = node;
      return { node: { ...resolve(root, nonNull[0]), ...local }, nullable: true };
    }
  }
  return { node: resolve(root, node), nullable: false };
}

function enumOf(node: JsonSchema): readonly string[] | null {
  const values = node["enum"];
  return Array.isArray(values) ? values.filter((value): value is string => typeof value === "string") : null;
}

/** The control for one property, or null for nested objects (edited elsewhere or not at all). */
export function fieldFor(root: JsonSchema, key: string, raw: JsonSchema, required: boolean): FieldSpec | null {
  const { node, nullable } = unwrapNullable(root, raw);
  const base = {
    key,
    label: str(node["title"]) || humanize(key.split(".").pop() ?? key),
    description: str(node["description"]),
    required: required && !nullable,
    options: [] as readonly string[],
  };
  const options = enumOf(node);
  if (options !== null) return { ...base, kind: "select", options };
  switch (node["type"]) {
    case "string": {
      const maxLength = num(node["maxLength"]);
      const kind = maxLength !== undefined && maxLength > TEXTAREA_FROM ? "textarea" : "text";
      return { ...base, kind, ...(maxLength === undefined ? {} : { maxLength }) };
    }
    case "integer":
    case "number": {
      const min = num(node["minimum"]);
      const max = num(node["maximum"]);
      return {
        ...base,
        kind: "number",
        integer: node["type"] === "integer",
        ...(min === undefined ? {} : { min }),
        ...(max === undefined ? {} : { max }),
      };
    }
    case "boolean":
      return { ...base, kind: "checkbox", required: false };
    case "array": {
      const items = isObject(node["items"]) ? resolve(root, node["items"]) : {};
      const maxItems = num(node["maxItems"]);
      const itemOptions = enumOf(items);
      const limits = maxItems === undefined ? {} : { maxItems };
      if (itemOptions !== null) return { ...base, kind: "multiselect", options: itemOptions, ...limits };
      if (items["type"] === "string") return { ...base, kind: "tags", ...limits };
      return null;
    }
    default:
      return null;
  }
}

/** The form's sections, from the annotation schema's top-level object properties. */
export function formSections(root: JsonSchema): SectionSpec[] {
  const properties = isObject(root["properties"]) ? root["properties"] : {};
  const requiredTop = Array.isArray(root["required"]) ? root["required"] : [];
  const sections: SectionSpec[] = [];
  for (const [name, raw] of Object.entries(properties)) {
    if (!isObject(raw)) continue;
    const { node, nullable } = unwrapNullable(root, raw);
    if (node["type"] !== "object" || !isObject(node["properties"])) continue;
    const required = Array.isArray(node["required"]) ? node["required"] : [];
    const fields: FieldSpec[] = [];
    for (const [prop, child] of Object.entries(node["properties"])) {
      if (!isObject(child)) continue;
      const field = fieldFor(root, `${name}.${prop}`, child, required.includes(prop));
      if (field !== null) fields.push(field);
    }
    sections.push({
      key: name,
      title: str(node["title"]) || humanize(name),
      description: str(node["description"]),
      optional: nullable || !requiredTop.includes(name),
      fields,
    });
  }
  const rank = (key: string): number => {
    const at = SECTION_ORDER.indexOf(key);
    return at === -1 ? SECTION_ORDER.length : at;
  };
  return sections.sort((a, b) => rank(a.key) - rank(b.key));
}

/**
 * The directions the schema allows for a camera `movement` (its `if movement = X then
 * direction ...` rules): an empty list when the movement takes no direction.
 */
export function directionOptions(root: JsonSchema, movement: string): readonly string[] {
  const defs = isObject(root["$defs"]) ? root["$defs"] : {};
  const camera = isObject(defs["Camera"]) ? defs["Camera"] : {};
  const rules = Array.isArray(camera["allOf"]) ? camera["allOf"].filter(isObject) : [];
  for (const rule of rules) {
    const when = isObject(rule["if"]) && isObject(rule["if"]["properties"]) ? rule["if"]["properties"] : {};
    const movementRule = isObject(when["movement"]) ? when["movement"] : {};
    if (movementRule["const"] !== movement) continue;
    const then = isObject(rule["then"]) && isObject(rule["then"]["properties"]) ? rule["then"]["properties"] : {};
    const direction = isObject(then["direction"]) ? then["direction"] : {};
    return enumOf(direction) ?? [];
  }
  const all = isObject(defs["MovementDirection"]) ? enumOf(defs["MovementDirection"]) : null;
  return all ?? [];
}

/** `golden_hour` → `Golden hour`; `cc-by-4.0` stays as it is. */
export function humanize(term: string): string {
  if (!/^[a-z0-9_]+$/.test(term)) return term;
  const words = term.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Comma- or newline-separated free keywords → trimmed, non-empty, without repeats. */
export function splitTags(text: string): string[] {
  const tags = text
    .split(/[,\n]/)
    .map((tag) => tag.trim())
    .filter((tag) => tag !== "");
  return [...new Set(tags)];
}

function converted(field: FieldSpec, value: FormValue | undefined): unknown {
  switch (field.kind) {
    case "checkbox":
      return value === true;
    case "multiselect":
      return Array.isArray(value) && value.length > 0 ? [...value] : undefined;
    case "tags": {
      const tags = typeof value === "string" ? splitTags(value) : [];
      return tags.length > 0 ? tags : undefined;
    }
    case "number": {
      const text = typeof value === "string" ? value.trim() : "";
      // A non-number is sent as typed, so the server's message explains it next to the field.
      return text === "" ? undefined : Number.isFinite(Number(text)) ? Number(text) : text;
    }
    default: {
      const text = typeof value === "string" ? value : "";
      return text.trim() === "" ? undefined : text;
    }
  }
}

/**
 * The annotation object for the form's values: empty controls are left out (the schema
 * fills defaults), opt-in sections only when their section key is `true`, and the
 * schema's constant `schema_version`.
 */
export function buildAnnotation(root: JsonSchema, sections: readonly SectionSpec[], values: FormValues) {
  const annotation: Record<string, unknown> = {};
  const properties = isObject(root["properties"]) ? root["properties"] : {};
  const version = isObject(properties["schema_version"]) ? properties["schema_version"]["const"] : undefined;
  if (typeof version === "string") annotation["schema_version"] = version;
  for (const section of sections) {
    if (section.optional && values[section.key] !== true) continue;
    const part: Record<string, unknown> = {};
    for (const field of section.fields) {
      const value = converted(field, values[field.key]);
      if (value !== undefined) part[field.key.slice(section.key.length + 1)] = value;
    }
    annotation[section.key] = part;
  }
  return annotation;
}
