// Every page: a document title and one h1.
import { type ReactNode, useEffect } from "react";

/** A page with its heading and an optional one-line description. */
export function Page({ title, intro, children }: { title: string; intro?: string; children?: ReactNode }) {
  useEffect(() => {
    document.title = `${title} · Shotbank`;
  }, [title]);
  return (
    <>
      <h1>{title}</h1>
      {intro !== undefined ? <p className="intro">{intro}</p> : null}
      {children}
    </>
  );
}

/** A loading line that screen readers announce. */
export function Loading({ what }: { what: string }) {
  return <p role="status">Loading {what}…</p>;
}

/** An error line that screen readers announce at once. */
export function LoadError({ text }: { text: string }) {
  return (
    <p role="alert" className="notice notice-error">
      {text}
    </p>
  );
}
