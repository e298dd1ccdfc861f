// A preview of the chosen clip: the video itself, and a strip of frames sampled evenly
// through it with a canvas (a quick check that the right file and shot were chosen).
import { useEffect, useState } from "react";

/** How many frames the strip shows. */
const FRAME_COUNT = 6;
/** Width of a sampled frame in CSS pixels (height follows the clip's aspect ratio). */
const FRAME_WIDTH = 160;
/** Longest wait for one seek before giving up on the strip (a broken file never answers). */
const SEEK_TIMEOUT_MS = 5000;

interface Frame {
  readonly at: number;
  readonly src: string;
}

function once(video: HTMLVideoElement, event: "seeked" | "loadeddata"): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = window.setTimeout(() => reject(new Error("timeout")), SEEK_TIMEOUT_MS);
    const done = (): void => {
      window.clearTimeout(timer);
      video.removeEventListener("error", failed);
      resolve();
    };
    const failed = (): void => {
      window.clearTimeout(timer);
      reject(new Error("the browser cannot decode this clip"));
    };
    video.addEventListener(event, done, { once: true });
    video.addEventListener("error", failed, { once: true });
  });
}

async function sample(url: string, live: () => boolean): Promise<Frame[]> {
  const video = document.createElement("video");
  video.muted = true;
  video.preload = "auto";
  video.src = url;
  await once(video, "loadeddata");
  const duration = Number.isFinite(video.duration) ? video.duration : 0;
  const canvas = document.createElement("canvas");
  canvas.width = FRAME_WIDTH;
  canvas.height = Math.max(1, Math.round((FRAME_WIDTH * video.videoHeight) / Math.max(1, video.videoWidth)));
  const context = canvas.getContext("2d");
  if (context === null || duration <= 0) return [];
  const frames: Frame[] = [];
  for (let index = 0; index < FRAME_COUNT && live(); index += 1) {
    const at = ((index + 0.5) * duration) / FRAME_COUNT;
    video.currentTime = at;
    await once(video, "seeked");
    context.drawImage(video, 0, 0, canvas.width, canvas.height);
    frames.push({ at, src: canvas.toDataURL("image/jpeg", 0.7) });
  }
  video.removeAttribute("src");
  video.load();
  return frames;
}

/** The clip's video and its sampled frames. */
export function ClipPreview({ file }: { file: File }) {
  const [url, setUrl] = useState<string | null>(null);
  const [frames, setFrames] = useState<readonly Frame[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  const [open, setOpen] = useState(false);

  // Decoding is done only once the preview is opened: a page of twenty clips stays light.
  useEffect(() => {
    if (!open) return undefined;
    const objectUrl = URL.createObjectURL(file);
    let live = true;
    setUrl(objectUrl);
    setFrames([]);
    setProblem(null);
    sample(objectUrl, () => live).then(
      (sampled) => live && setFrames(sampled),
      () => live && setProblem("No preview: this browser cannot play the clip (the upload is not affected)."),
    );
    return () => {
      live = false;
      URL.revokeObjectURL(objectUrl);
    };
  }, [file, open]);

  return (
    <details className="clip-preview" onToggle={(event) => setOpen(event.currentTarget.open)}>
      <summary>Preview of the clip</summary>
      {url === null ? null : problem !== null ? (
        <p className="uf-hint">{problem}</p>
      ) : (
        <>
          <video controls muted preload="metadata" src={url} aria-label={`Preview of ${file.name}`} />
          {frames.length > 0 ? (
            <ul className="frame-strip" aria-label={`Frames sampled from ${file.name}`}>
              {frames.map((frame) => (
                <li key={frame.at}>
                  <img src={frame.src} alt={`Frame at ${frame.at.toFixed(1)} s`} width={FRAME_WIDTH} />
                </li>
              ))}
            </ul>
          ) : null}
        </>
      )}
    </details>
  );
}
