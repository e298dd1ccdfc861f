// A tiny loader hook for the pages: runs a typed API call, keeps its data or error text.
import { useEffect, useState } from "react";
import { apiErrorText } from "./client";

/** Where one load stands. */
export type Loaded<T> =
  | { readonly state: "idle" }
  | { readonly state: "loading" }
  | { readonly state: "error"; readonly text: string }
  | { readonly state: "ready"; readonly data: T };

/** Runs `load` whenever `key` changes (`null`: nothing to load), ignoring stale answers. */
export function useQuery<T>(
  key: string | null,
  load: () => Promise<{ data?: T; error?: unknown }>,
): Loaded<T> {
  const [result, setResult] = useState<Loaded<T>>({ state: key === null ? "idle" : "loading" });
  useEffect(() => {
    if (key === null) {
      setResult({ state: "idle" });
      return undefined;
    }
    let live = true;
    setResult({ state: "loading" });
    load().then(
      ({ data, error }) => {
        if (!live) return;
        setResult(data !== undefined ? { state: "ready", data } : { state: "error", text: apiErrorText(error) });
      },
      (error: unknown) => {
        if (live) setResult({ state: "error", text: `The server could not be reached (${String(error)}).` });
      },
    );
    return () => {
      live = false;
    };
    // `load` closes over what `key` names; keying on it avoids refetching every render.
  }, [key]);
  return result;
}
