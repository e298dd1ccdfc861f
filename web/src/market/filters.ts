// Client-side filters of the catalogue over each dataset's `filter` document.

/** What the catalogue filters on (empty string: any). */
export interface CatalogueFilters {
  readonly cameraMove: string;
  readonly lighting: string;
  readonly audioStyle: string;
  readonly minScore: string;
}

/** No filter. */
export const NO_FILTERS: CatalogueFilters = { cameraMove: "", lighting: "", audioStyle: "", minScore: "" };

const listOf = (filter: Record<string, unknown>, key: string): string[] | null => {
  const value = filter[key];
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : null;
};

/** Every value a filter key takes across the datasets, sorted (the select's options). */
export function filterOptions(filters: readonly Record<string, unknown>[], key: string): string[] {
  const values = new Set<string>();
  for (const filter of filters) for (const value of listOf(filter, key) ?? []) values.add(value);
  return [...values].sort();
}

/**
 * Whether a dataset's clips can match: a chosen value must be one the dataset selects (a
 * dataset that does not restrict that field takes any clip, so it matches); a minimum score
 * must be at most the dataset's own `min_quality`.
 */
export function matchesFilters(filter: Record<string, unknown>, chosen: CatalogueFilters): boolean {
  const allows = (key: string, value: string): boolean => {
    if (value === "") return true;
    const list = listOf(filter, key);
    return list === null || list.includes(value);
  };
  if (!allows("camera_movements", chosen.cameraMove)) return false;
  if (!allows("lighting_setups", chosen.lighting)) return false;
  if (!allows("audio_genres", chosen.audioStyle)) return false;
  if (chosen.minScore !== "") {
    const wanted = Number(chosen.minScore);
    const floor = typeof filter.min_quality === "number" ? filter.min_quality : 0;
    if (Number.isFinite(wanted) && floor < wanted) return false;
  }
  return true;
}

/** `camera_movements` value `dolly_in` as "dolly in". */
export const humanize = (value: string): string => value.replace(/_/g, " ");
