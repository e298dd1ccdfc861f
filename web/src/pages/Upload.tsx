// Upload: drop or choose clips; each gets a resumable upload and an annotation form
// generated from the served schema.
import { type DragEvent, useCallback, useEffect, useId, useMemo, useState } from "react";
import { api } from "../api/client";
import { LoadError, Loading, Page } from "../components/Page";
import { UploadCard } from "../upload/UploadCard";
import { type JsonSchema, formSections } from "../upload/schemaForm";
import { useSignedInAddress } from "../wallet/WalletContext";

/** Most files one page holds at once. */
const MAX_FILES = 20;
/** Uploads sent at the same time: the backend allows each wallet 4 unfinished uploads. */
const PARALLEL_UPLOADS = 3;

interface Chosen {
  readonly key: string;
  readonly file: File;
}

function useAnnotationSchema(): { schema: JsonSchema | null; error: string | null } {
  const [schema, setSchema] = useState<JsonSchema | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    api.GET("/api/v1/schemas/annotation/v1", { parseAs: "json" }).then(
      ({ data }) => {
        if (!live) return;
        const value: unknown = data;
        if (typeof value === "object" && value !== null) setSchema(value as JsonSchema);
        else setError("The annotation schema could not be loaded.");
      },
      () => live && setError("The annotation schema could not be loaded."),
    );
    return () => {
      live = false;
    };
  }, []);
  return { schema, error };
}

/** Upload clips (signed in). */
export function Upload() {
  const address = useSignedInAddress();
  const inputId = useId();
  const { schema, error } = useAnnotationSchema();
  const sections = useMemo(() => (schema === null ? [] : formSections(schema)), [schema]);
  const [chosen, setChosen] = useState<readonly Chosen[]>([]);
  const [dragging, setDragging] = useState(false);
  const [uploaded, setUploaded] = useState<ReadonlySet<string>>(new Set());
  const markUploaded = useCallback((key: string) => {
    setUploaded((old) => (old.has(key) ? old : new Set([...old, key])));
  }, []);
  // The first few files not yet uploaded may send; the others wait their turn.
  const sending = new Set(
    chosen
      .filter((item) => !uploaded.has(item.key))
      .slice(0, PARALLEL_UPLOADS)
      .map((item) => item.key),
  );
  const [notice, setNotice] = useState<string | null>(null);

  const add = (files: Iterable<File>): void => {
    const all = [...files];
    const videos = all.filter((file) => file.type === "" || file.type.startsWith("video/"));
    const skipped = all.length - videos.length;
    const known = new Set(chosen.map((item) => item.key));
    const fresh = videos
      .map((file) => ({ key: `${file.name}:${file.size}:${file.lastModified}`, file }))
      .filter((item) => !known.has(item.key));
    const room = Math.max(0, MAX_FILES - chosen.length);
    setNotice(
      fresh.length > room
        ? `At most ${MAX_FILES} clips at a time: finish some first.`
        : skipped > 0
          ? `Skipped ${skipped} file${skipped === 1 ? "" : "s"} that ${skipped === 1 ? "is" : "are"} not a video.`
          : null,
    );
    setChosen([...chosen, ...fresh.slice(0, room)]);
  };

  const drop = (event: DragEvent<HTMLDivElement>): void => {
    event.preventDefault();
    setDragging(false);
    add(event.dataTransfer.files);
  };

  return (
    <Page title="Upload" intro="Drop one or many clips, annotate each, and upload them resumably.">
      {address === null ? (
        <p>Sign in to upload clips.</p>
      ) : (
        <>
          <div
            className={`dropzone${dragging ? " dropzone-active" : ""}`}
            onDragOver={(event) => {
              event.preventDefault();
              setDragging(true);
            }}
            onDragLeave={() => setDragging(false)}
            onDrop={drop}
          >
            <p>Drag and drop video clips here, or</p>
            <label htmlFor={inputId} className="button-like">
              Choose clips
            </label>
            <input
              id={inputId}
              className="visually-hidden"
              type="file"
              accept="video/*"
              multiple
              onChange={(event) => {
                if (event.target.files !== null) add(event.target.files);
                event.target.value = "";
              }}
            />
            <p className="uf-hint">
              Uploads resume where they stopped: after a reload, choose the same file again.
            </p>
          </div>
          {notice !== null ? (
            <p role="status" className="notice">
              {notice}
            </p>
          ) : null}
          {error !== null ? <LoadError text={error} /> : null}
          {schema === null && error === null ? <Loading what="the annotation form" /> : null}
          {schema !== null ? (
            <div className="upload-list">
              {chosen.map((item) => (
                <UploadCard
                  key={item.key}
                  file={item.file}
                  schema={schema}
                  sections={sections}
                  mayStart={uploaded.has(item.key) || sending.has(item.key)}
                  onUploaded={() => markUploaded(item.key)}
                  onRemove={() => setChosen((old) => old.filter((other) => other.key !== item.key))}
                />
              ))}
            </div>
          ) : null}
        </>
      )}
    </Page>
  );
}
