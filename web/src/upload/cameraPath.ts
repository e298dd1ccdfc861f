// Camera paths as the editor shows them (time, position, yaw, pitch) and as the schema
// stores them (`camera.path`: keyframes with `position_m` and a camera-to-world unit
// quaternion `orientation_wxyz`; camera frame +x right, +y down, +z forward).
//
// The editor's angles are in that same world frame: yaw turns the camera about the
// vertical (y) axis, positive to the right (towards +x); pitch tilts it about its own x
// axis, positive upwards (towards -y). Roll is not edited: an imported path loses it.

/** Most keyframes the editor holds (the schema allows 10,000; a table that long is useless). */
export const MAX_ROWS = 500;

/** One row of the keyframe table. */
export interface PathRow {
  readonly time_s: number;
  readonly x: number;
  readonly y: number;
  readonly z: number;
  readonly yaw_deg: number;
  readonly pitch_deg: number;
}

/** A keyframe in the schema's shape. */
export interface SchemaKeyframe {
  readonly time_s: number;
  readonly position_m: readonly [number, number, number];
  readonly orientation_wxyz: readonly [number, number, number, number];
  readonly focal_length_mm?: number | null;
}

/** `camera.path` in the schema's shape. */
export interface SchemaPath {
  readonly keyframes: readonly SchemaKeyframe[];
  readonly position_scale: "metric" | "arbitrary";
}

const RAD = Math.PI / 180;

function round(value: number, digits = 6): number {
  const scale = 10 ** digits;
  // `+ 0` turns -0 into 0, so a pose at rest serialises as it reads.
  return Math.round(value * scale) / scale + 0;
}

/** The quaternion (w, x, y, z) of a yaw then pitch, as defined above. */
export function orientation(yawDeg: number, pitchDeg: number): [number, number, number, number] {
  const cy = Math.cos((yawDeg * RAD) / 2);
  const sy = Math.sin((yawDeg * RAD) / 2);
  // Pitching up by +p about +x takes forward (0, 0, 1) to (0, -sin p, cos p): up, as y is down.
  const cp = Math.cos((pitchDeg * RAD) / 2);
  const sp = Math.sin((pitchDeg * RAD) / 2);
  // q_yaw (about y) ⊗ q_pitch (about x).
  const q: [number, number, number, number] = [cy * cp, cy * sp, sy * cp, -sy * sp];
  return q[0] < 0 ? (q.map((v) => round(-v)) as typeof q) : (q.map((v) => round(v)) as typeof q);
}

/** Where a camera with quaternion `q` looks (its +z axis in the world). */
export function forward([w, x, y, z]: readonly [number, number, number, number]): [number, number, number] {
  return [2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)];
}

/** Yaw and pitch (degrees) of a quaternion; roll is ignored. */
export function yawPitch(q: readonly [number, number, number, number]): { yaw_deg: number; pitch_deg: number } {
  const norm = Math.hypot(...q) || 1;
  const [fx, fy, fz] = forward(q.map((v) => v / norm) as unknown as [number, number, number, number]);
  return {
    yaw_deg: round(Math.atan2(fx, fz) / RAD, 3),
    pitch_deg: round(Math.asin(Math.max(-1, Math.min(1, -fy))) / RAD, 3),
  };
}

/** The schema's keyframes for the table's rows. */
export function toSchemaPath(rows: readonly PathRow[], scale: SchemaPath["position_scale"]): SchemaPath {
  return {
    position_scale: scale,
    keyframes: rows.map((row) => ({
      time_s: row.time_s,
      position_m: [row.x, row.y, row.z],
      orientation_wxyz: orientation(row.yaw_deg, row.pitch_deg),
    })),
  };
}

function finite(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function triple(value: unknown): value is [number, number, number] {
  return Array.isArray(value) && value.length === 3 && value.every(finite);
}

function quad(value: unknown): value is [number, number, number, number] {
  return Array.isArray(value) && value.length === 4 && value.every(finite);
}

/**
 * Rows from a path file: JSON in the schema's format (a `camera.path` object
 * `{"keyframes": [...], "position_scale"}`, a whole annotation, or a bare list of
 * keyframes), else RealEstate10K's one-pose-per-line text (see {@link parseRe10kText}).
 * Throws an Error that says what is wrong, with the keyframe's index or line number.
 */
export function parsePathFile(text: string): { rows: PathRow[]; scale: SchemaPath["position_scale"] } {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    return { rows: parseRe10kText(text), scale: "arbitrary" };
  }
  let path: unknown = document;
  if (typeof path === "object" && path !== null && "camera" in path) {
    const camera = (path as { camera: unknown }).camera;
    path = typeof camera === "object" && camera !== null && "path" in camera ? (camera as { path: unknown }).path : null;
  }
  const keyframes: unknown = Array.isArray(path)
    ? path
    : typeof path === "object" && path !== null && "keyframes" in path
      ? (path as { keyframes: unknown }).keyframes
      : null;
  if (!Array.isArray(keyframes)) throw new Error("The file has no keyframes list.");
  if (keyframes.length > MAX_ROWS) throw new Error(`The file has ${keyframes.length} keyframes; at most ${MAX_ROWS}.`);
  const rows = keyframes.map((raw: unknown, index): PathRow => {
    const frame = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
    const time = frame["time_s"];
    const position = frame["position_m"];
    const rotation = frame["orientation_wxyz"];
    if (!finite(time) || !triple(position) || !quad(rotation)) {
      throw new Error(`Keyframe ${index + 1} needs time_s, position_m (3 numbers) and orientation_wxyz (4 numbers).`);
    }
    return { time_s: time, x: position[0], y: position[1], z: position[2], ...yawPitch(rotation) };
  });
  const declared =
    typeof path === "object" && path !== null && "position_scale" in path
      ? (path as { position_scale: unknown }).position_scale
      : "metric";
  return { rows, scale: declared === "arbitrary" ? "arbitrary" : "metric" };
}

/** A new row after the last: one second later, same pose (or the origin for the first). */
export function nextRow(rows: readonly PathRow[]): PathRow {
  const last = rows[rows.length - 1];
  if (last === undefined) return { time_s: 0, x: 0, y: 0, z: 0, yaw_deg: 0, pitch_deg: 0 };
  return { ...last, time_s: round(last.time_s + 1, 3) };
}

/** A top-down picture (looking down the world's y axis): x to the right, z up the page. */
export interface TopDown {
  readonly viewBox: string;
  readonly line: string;
  readonly arrows: readonly { x1: number; y1: number; x2: number; y2: number }[];
}

/** The path line and a direction arrow per keyframe, fitted into a square of `size`. */
export function topDown(rows: readonly PathRow[], size = 200): TopDown {
  const margin = size * 0.12;
  const xs = rows.map((row) => row.x);
  const zs = rows.map((row) => row.z);
  const minX = Math.min(...xs, 0);
  const maxX = Math.max(...xs, 0);
  const minZ = Math.min(...zs, 0);
  const maxZ = Math.max(...zs, 0);
  const span = Math.max(maxX - minX, maxZ - minZ, 1e-9);
  const scale = (size - 2 * margin) / span;
  // Centred on the path's bounding box, so a straight line sits in the middle.
  const midX = (minX + maxX) / 2;
  const midZ = (minZ + maxZ) / 2;
  const px = (x: number): number => round(size / 2 + (x - midX) * scale, 2);
  const pz = (z: number): number => round(size / 2 - (z - midZ) * scale, 2);
  const arrowLength = size * 0.08;
  return {
    viewBox: `0 0 ${size} ${size}`,
    line: rows.map((row) => `${px(row.x)},${pz(row.z)}`).join(" "),
    arrows: rows.map((row) => {
      const yaw = row.yaw_deg * RAD;
      return {
        x1: px(row.x),
        y1: pz(row.z),
        x2: round(px(row.x) + Math.sin(yaw) * arrowLength, 2),
        y2: round(pz(row.z) - Math.cos(yaw) * arrowLength, 2),
      };
    }),
  };
}

/** Numbers on a RealEstate10K pose line: time, fx, fy, cx, cy, 2 distortion terms, [R | t]. */
const RE10K_FIELDS = 19;

/**
 * Rows from RealEstate10K's text: an optional first line naming the video, then per
 * line a timestamp in microseconds (shifted to start at 0), intrinsics, and the
 * world-to-camera matrix `[R | t]` row-major; the camera centre is `-Rᵀt` and it looks
 * along `Rᵀ(0, 0, 1)` (the third row of R). Positions have no known scale.
 */
export function parseRe10kText(text: string): PathRow[] {
  const lines = text.split(/\r?\n/).map((line, index) => ({ line: line.trim(), number: index + 1 }));
  const poses = lines.filter(({ line }, index) => line !== "" && !(index === 0 && !/^[-+\d.]/.test(line)));
  if (poses.length === 0) {
    throw new Error("The file is neither JSON in the annotation schema's format nor RealEstate10K poses.");
  }
  if (poses.length > MAX_ROWS) throw new Error(`The file has ${poses.length} poses; at most ${MAX_ROWS}.`);
  let start: number | null = null;
  return poses.map(({ line, number }) => {
    const values = line.split(/\s+/).map(Number);
    if (values.length !== RE10K_FIELDS || !values.every(Number.isFinite)) {
      throw new Error(`Line ${number}: a pose needs ${RE10K_FIELDS} numbers (time, intrinsics, 3x4 matrix).`);
    }
    const m = values.slice(7);
    const at = (row: number, column: number): number => m[row * 4 + column] ?? 0;
    start ??= values[0] ?? 0;
    const centre = [0, 1, 2].map((j) => -(at(0, j) * at(0, 3) + at(1, j) * at(1, 3) + at(2, j) * at(2, 3)));
    const [fx, fy, fz] = [at(2, 0), at(2, 1), at(2, 2)];
    return {
      time_s: round(((values[0] ?? 0) - start) / 1e6, 6),
      x: round(centre[0] ?? 0),
      y: round(centre[1] ?? 0),
      z: round(centre[2] ?? 0),
      yaw_deg: round(Math.atan2(fx, fz) / RAD, 3),
      pitch_deg: round(Math.asin(Math.max(-1, Math.min(1, -fy))) / RAD, 3),
    };
  });
}
