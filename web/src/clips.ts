// What the clip list shows of a clip's consensus scores and status.
import type { Schemas } from "./api/client";

/** A clip's status. */
export type ClipStatus = Schemas["ClipStatus"];

/** Statuses a clip leaves on its own (the list refreshes while any clip is in one). */
export const MOVING_STATUSES: readonly ClipStatus[] = ["received", "probing", "queued", "scoring"];

/** Plain words for each status. */
export const STATUS_LABELS: Readonly<Record<ClipStatus, string>> = {
  received: "Received",
  probing: "Checking media",
  queued: "Waiting for validators",
  scoring: "Being scored",
  accepted: "Accepted",
  rejected: "Rejected",
  failed: "Failed",
  withdrawn: "Withdrawn",
};

/** The components validators score, in display order. */
export const COMPONENTS = ["scene", "lighting", "camera", "audio"] as const;

/** One score for display: a name and a percentage, or a dash when not scorable. */
export interface ScoreCell {
  readonly name: string;
  readonly text: string;
}

function percent(value: unknown): string {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 && value <= 1
    ? `${Math.round(value * 100)}%`
    : "—";
}

/**
 * The consensus quality and per-component scores of a clip's stored decision
 * (`{"quality": 0.8, "components": {"scene": 0.9, ...}}`); `null` until the clip is scored.
 */
export function scoreCells(scores: Record<string, unknown> | null | undefined): ScoreCell[] | null {
  if (scores === null || scores === undefined) return null;
  const raw = scores["components"];
  const components = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>) : {};
  return [
    { name: "quality", text: percent(scores["quality"]) },
    ...COMPONENTS.filter((name) => name in components).map((name) => ({
      name,
      text: percent(components[name]),
    })),
  ];
}
