// A "Copy" button that puts a text on the clipboard and says so.
import { useEffect, useState } from "react";

/** Copies `text`; `label` names what is copied for screen readers ("Copy version hash"). */
export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [said, setSaid] = useState<string | null>(null);
  useEffect(() => {
    if (said === null) return undefined;
    const timer = setTimeout(() => setSaid(null), 2500);
    return () => clearTimeout(timer);
  }, [said]);
  const copy = (): void => {
    // The Clipboard API needs a secure context and permission; say so rather than fail silently.
    const clipboard = typeof navigator === "undefined" ? undefined : navigator.clipboard;
    if (clipboard === undefined) {
      setSaid("Copy not available here: select the text instead.");
      return;
    }
    clipboard.writeText(text).then(
      () => setSaid("Copied"),
      () => setSaid("Copy not allowed here: select the text instead."),
    );
  };
  return (
    <span className="copy">
      <button type="button" className="secondary" aria-label={label === "Copy" ? undefined : label} onClick={copy}>
        Copy
      </button>
      <span role="status" className="copy-said">
        {said ?? ""}
      </span>
    </span>
  );
}
