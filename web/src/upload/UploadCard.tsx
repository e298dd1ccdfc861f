// One chosen clip: its resumable upload (progress, pause, resume) and its annotation,
// submitted as a clip once every byte is on the server.
import { useEffect, useId, useMemo, useRef, useState } from "react";
import { Link } from "react-router";
import { type Schemas, api, apiErrorText } from "../api/client";
import { STATUS_LABELS } from "../clips";
import { formatBytes } from "../format";
import { AnnotationForm } from "./AnnotationForm";
import { CameraPathEditor, type TextRow, parseRows } from "./CameraPathEditor";
import { ClipPreview } from "./ClipPreview";
import { type SchemaPath, toSchemaPath } from "./cameraPath";
import { dropDraft, draftKey, loadDraft, saveDraft } from "./drafts";
import { type FormValue, type FormValues, type JsonSchema, type SectionSpec, buildAnnotation } from "./schemaForm";
import { type MappedErrors, mapServerErrors } from "./serverErrors";
import { useTusUpload } from "./useTusUpload";

type Clip = Schemas["ClipOwnerView"];

const PHASE_TEXT = {
  waiting: "Waiting for other uploads to finish…",
  starting: "Looking for an earlier upload of this file…",
  uploading: "Uploading…",
  paused: "Paused.",
  done: "Uploaded.",
  error: "Stopped.",
} as const;

const NO_ERRORS: MappedErrors = { fields: {}, general: [] };
/** Where server messages about the camera path are shown. */
const PATH_KEY = "camera.path";

interface Props {
  readonly file: File;
  readonly schema: JsonSchema;
  readonly sections: readonly SectionSpec[];
  readonly onRemove: () => void;
  /** Whether this card may start uploading now (the page runs a few at once). */
  readonly mayStart: boolean;
  /** Called once when every byte is on the server. */
  readonly onUploaded: () => void;
}

/** A card per chosen file: upload state and controls, then the annotation form. */
export function UploadCard({ file, schema, sections, onRemove, mayStart, onUploaded }: Props) {
  const titleId = useId();
  const upload = useTusUpload(file, mayStart);
  const done = upload.phase === "done";
  const key = draftKey(file);
  const [draft] = useState(() => loadDraft(key));
  const [values, setValues] = useState<FormValues>(draft?.values ?? {});
  const [pathRows, setPathRows] = useState<readonly TextRow[]>(draft?.pathRows ?? []);
  const [pathScale, setPathScale] = useState<SchemaPath["position_scale"]>(draft?.pathScale ?? "metric");
  const [errors, setErrors] = useState<MappedErrors>(NO_ERRORS);
  const [submitting, setSubmitting] = useState(false);
  const [clip, setClip] = useState<Clip | null>(null);
  const form = useRef<HTMLFormElement>(null);

  useEffect(() => {
    if (done) onUploaded();
  }, [done, onUploaded]);
  useEffect(() => {
    // Nothing typed yet: no draft (so choosing the file again announces none).
    if (clip === null && (Object.keys(values).length > 0 || pathRows.length > 0)) {
      saveDraft(key, { values, pathRows, pathScale });
    }
  }, [key, clip, values, pathRows, pathScale]);
  // After the server refused fields, take keyboard and screen-reader users to the first.
  useEffect(() => {
    if (Object.keys(errors.fields).length === 0) return;
    form.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
  }, [errors]);
  const knownKeys = useMemo(
    () => [PATH_KEY, ...sections.flatMap((section) => [section.key, ...section.fields.map((field) => field.key)])],
    [sections],
  );

  const annotation = (): Record<string, unknown> => {
    const built = buildAnnotation(schema, sections, values);
    const camera = built["camera"];
    if (pathRows.length > 0 && typeof camera === "object" && camera !== null) {
      built["camera"] = { ...camera, path: toSchemaPath(parseRows(pathRows), pathScale) };
    }
    return built;
  };

  const change = (key: string, value: FormValue): void => {
    setValues((old) => {
      const next: Record<string, FormValue> = { ...old, [key]: value };
      // A direction only makes sense for the movement it was picked for.
      if (key === "camera.movement") delete next["camera.direction"];
      return next;
    });
  };

  const submit = async (): Promise<void> => {
    if (upload.uploadId === null) return;
    setSubmitting(true);
    setErrors(NO_ERRORS);
    try {
      const { data, error, response } = await api.POST("/api/v1/clips", {
        body: { upload_id: upload.uploadId, annotation: annotation() },
      });
      if (data !== undefined) {
        dropDraft(key);
        setClip(data);
      } else if (response.status === 422) {
        setErrors(mapServerErrors(error, knownKeys, apiErrorText(error)));
      } else {
        setErrors({ fields: {}, general: [apiErrorText(error)] });
      }
    } catch {
      setErrors({ fields: {}, general: ["The server could not be reached: try again."] });
    } finally {
      setSubmitting(false);
    }
  };

  const percent = upload.total > 0 ? Math.floor((upload.sent / upload.total) * 100) : 100;
  return (
    <section className="card upload-card" aria-labelledby={titleId}>
      <div className="upload-head">
        <h2 id={titleId} className="clip-name">
          {file.name}
        </h2>
        {clip === null ? (
          <button type="button" className="secondary" aria-label={`Remove ${file.name}`} onClick={onRemove}>
            Remove
          </button>
        ) : null}
      </div>
      <p className="upload-meta">
        {formatBytes(file.size)}
        {upload.uploadId !== null ? <span> · upload {upload.uploadId}</span> : null}
      </p>
      <div className="upload-progress">
        <progress aria-label={`Upload progress for ${file.name}`} max={upload.total || 1} value={upload.sent} />
        <span>{percent}%</span>
        {upload.phase === "uploading" ? (
          <button type="button" className="secondary" onClick={upload.pause}>
            Pause
          </button>
        ) : null}
        {upload.phase === "paused" || upload.phase === "error" ? (
          <button type="button" onClick={upload.resume}>
            Resume
          </button>
        ) : null}
      </div>
      <ClipPreview file={file} />
      <p role="status" className="upload-phase">
        {PHASE_TEXT[upload.phase]}
        {upload.resumed && !done ? " Continuing an earlier upload of this file." : null}
        {upload.resumed && done ? " Continued an earlier upload of this file." : null}
        {draft !== null && clip === null ? " Your earlier annotation of this file is filled in." : null}
      </p>
      {upload.error !== null ? (
        <p role="alert" className="notice notice-error">
          {upload.error}
        </p>
      ) : null}

      {clip !== null ? (
        <p role="status" className="notice">
          Submitted: {STATUS_LABELS[clip.status]}. <Link to="/clips">See it in My clips</Link>
        </p>
      ) : (
        <form
          ref={form}
          noValidate
          aria-label={`Annotation of ${file.name}`}
          onSubmit={(event) => {
            event.preventDefault();
            void submit();
          }}
        >
          {errors.general.length > 0 ? (
            <div role="alert" className="notice notice-error">
              {errors.general.map((text) => (
                <p key={text}>{text}</p>
              ))}
            </div>
          ) : null}
          <p className="uf-hint">Fields marked * are required.</p>
          <AnnotationForm
            schema={schema}
            sections={sections}
            values={values}
            errors={errors.fields}
            onChange={change}
            extra={{
              camera: (
                <CameraPathEditor
                  rows={pathRows}
                  scale={pathScale}
                  messages={errors.fields[PATH_KEY]}
                  onChange={(rows, scale) => {
                    setPathRows(rows);
                    setPathScale(scale);
                  }}
                />
              ),
            }}
          />
          <button type="submit" disabled={!done || submitting}>
            {submitting ? "Submitting…" : "Submit clip"}
          </button>
          {!done ? <p className="uf-hint">You can submit once the upload has finished.</p> : null}
          {Object.keys(errors.fields).length > 0 ? (
            <p role="alert" className="uf-error">
              The server refused some fields: see the messages next to them.
            </p>
          ) : null}
        </form>
      )}
    </section>
  );
}
