// The camera-path editor: a keyframe table (add, edit, remove, or import a path file in
// the schema's JSON format or RealEstate10K's pose text) and a top-down picture of the trajectory with the camera's
// direction at each keyframe.
import { useId, useState } from "react";
import { MAX_ROWS, type PathRow, type SchemaPath, nextRow, parsePathFile, topDown } from "./cameraPath";

/** A row as typed (numbers are parsed when the clip is submitted, so typing "-" works). */
export type TextRow = Readonly<Record<keyof PathRow, string>>;

/** Path files larger than this are refused before reading (10,000 keyframes fit easily). */
const MAX_FILE_BYTES = 4 * 1024 * 1024;

const COLUMNS: readonly { key: keyof PathRow; label: string }[] = [
  { key: "time_s", label: "Time (s)" },
  { key: "x", label: "X" },
  { key: "y", label: "Y" },
  { key: "z", label: "Z" },
  { key: "yaw_deg", label: "Yaw (°)" },
  { key: "pitch_deg", label: "Pitch (°)" },
];

/** Table text → numbers (an unparsable cell becomes NaN, sent as null: the server names it). */
export function parseRows(rows: readonly TextRow[]): PathRow[] {
  return rows.map((row) => ({
    time_s: Number(row.time_s),
    x: Number(row.x),
    y: Number(row.y),
    z: Number(row.z),
    yaw_deg: Number(row.yaw_deg),
    pitch_deg: Number(row.pitch_deg),
  }));
}

function toText(row: PathRow): TextRow {
  return {
    time_s: String(row.time_s),
    x: String(row.x),
    y: String(row.y),
    z: String(row.z),
    yaw_deg: String(row.yaw_deg),
    pitch_deg: String(row.pitch_deg),
  };
}

interface Props {
  readonly rows: readonly TextRow[];
  readonly scale: SchemaPath["position_scale"];
  readonly messages: readonly string[] | undefined;
  readonly onChange: (rows: readonly TextRow[], scale: SchemaPath["position_scale"]) => void;
}

function TrajectoryPicture({ rows }: { rows: readonly PathRow[] }) {
  const markerId = useId();
  const usable = rows.filter((row) => Object.values(row).every(Number.isFinite));
  if (usable.length === 0) return null;
  const picture = topDown(usable);
  return (
    <svg
      className="trajectory"
      viewBox={picture.viewBox}
      role="img"
      aria-label={`Top-down view of the camera path: ${usable.length} keyframe${usable.length === 1 ? "" : "s"}, forward is up`}
    >
      <defs>
        <marker id={markerId} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="5" markerHeight="5" orient="auto">
          <path d="M0,0 L10,5 L0,10 z" fill="currentColor" />
        </marker>
      </defs>
      <rect x="0" y="0" width="100%" height="100%" className="trajectory-ground" />
      <polyline points={picture.line} className="trajectory-line" />
      {picture.arrows.map((arrow, index) => (
        <g key={index}>
          <circle cx={arrow.x1} cy={arrow.y1} r="2.5" className="trajectory-point" />
          <line {...arrow} className="trajectory-arrow" markerEnd={`url(#${markerId})`} />
        </g>
      ))}
    </svg>
  );
}

/** Keyframes of `camera.path` and their picture. */
export function CameraPathEditor({ rows, scale, messages, onChange }: Props) {
  const id = useId();
  const [importError, setImportError] = useState<string | null>(null);
  const errorId = `${id}-error`;
  const invalid = messages !== undefined && messages.length > 0;

  const edit = (index: number, key: keyof PathRow, value: string): void => {
    onChange(
      rows.map((row, at) => (at === index ? { ...row, [key]: value } : row)),
      scale,
    );
  };

  const importFile = async (file: File): Promise<void> => {
    setImportError(null);
    if (file.size > MAX_FILE_BYTES) {
      setImportError("The path file is too large (at most 4 MiB).");
      return;
    }
    try {
      const parsed = parsePathFile(await file.text());
      onChange(parsed.rows.map(toText), parsed.scale);
    } catch (failure) {
      setImportError(failure instanceof Error ? failure.message : "The path file could not be read.");
    }
  };

  return (
    <div className="camera-path">
      <h3 id={`${id}-title`}>Camera path</h3>
      <p className="uf-hint">
        Optional: keyframes of the camera's position and direction (yaw turns right, pitch tilts up; the y axis points
        down). At least 2 keyframes, in increasing time. Import JSON in the annotation schema's format or
        RealEstate10K pose text (roll is not kept).
      </p>
      <div className="toolbar">
        <button
          type="button"
          className="secondary"
          disabled={rows.length >= MAX_ROWS}
          onClick={() => onChange([...rows, toText(nextRow(parseRows(rows)))], scale)}
        >
          Add keyframe
        </button>
        <label htmlFor={`${id}-import`} className="button-like secondary-like">
          Import a camera path
        </label>
        <input
          id={`${id}-import`}
          className="visually-hidden"
          type="file"
          accept=".json,.txt,application/json,text/plain"
          onChange={(event) => {
            const file = event.target.files?.[0];
            event.target.value = "";
            if (file !== undefined) void importFile(file);
          }}
        />
        <label htmlFor={`${id}-scale`}>Position scale</label>
        <select
          id={`${id}-scale`}
          value={scale}
          onChange={(event) => onChange(rows, event.target.value === "arbitrary" ? "arbitrary" : "metric")}
        >
          <option value="metric">Metres</option>
          <option value="arbitrary">Arbitrary (unknown scale)</option>
        </select>
        {rows.length > 0 ? (
          <button type="button" className="secondary" onClick={() => onChange([], scale)}>
            Clear path
          </button>
        ) : null}
      </div>
      {importError !== null ? (
        <p role="alert" className="uf-error">
          {importError}
        </p>
      ) : null}
      {invalid ? (
        <p id={errorId} className="uf-error">
          {messages.join(" ")}
        </p>
      ) : null}
      {rows.length > 0 ? (
        <div className="camera-path-body">
          <div className="table-scroll">
            <table aria-labelledby={`${id}-title`} aria-describedby={invalid ? errorId : undefined}>
              <thead>
                <tr>
                  <th scope="col">#</th>
                  {COLUMNS.map((column) => (
                    <th key={column.key} scope="col">
                      {column.label}
                    </th>
                  ))}
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map((row, index) => (
                  <tr key={index}>
                    <th scope="row">{index + 1}</th>
                    {COLUMNS.map((column) => (
                      <td key={column.key}>
                        <input
                          className="cell"
                          type="text"
                          inputMode="decimal"
                          aria-label={`Keyframe ${index + 1} ${column.label}`}
                          value={row[column.key]}
                          onChange={(event) => edit(index, column.key, event.target.value)}
                        />
                      </td>
                    ))}
                    <td>
                      <button
                        type="button"
                        className="secondary"
                        aria-label={`Remove keyframe ${index + 1}`}
                        onClick={() => onChange(rows.filter((_, at) => at !== index), scale)}
                      >
                        Remove
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <TrajectoryPicture rows={parseRows(rows)} />
        </div>
      ) : null}
    </div>
  );
}
