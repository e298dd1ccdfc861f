import { useCallback, useEffect, useId, useState } from "react";
import { Link } from "react-router";
import { type Schemas, api, apiErrorText } from "../api/client";
import { type ClipStatus, MOVING_STATUSES, STATUS_LABELS, scoreCells } from "../clips";
import { LoadError, Loading, Page } from "../components/Page";
import { formatDate, formatShot } from "../format";
import { useSignedInAddress } from "../wallet/WalletContext";

type Clip = Schemas["ClipOwnerView"];

/** Clips per page. */
const PAGE_SIZE = 20;
/** How often the list refreshes while a clip is still moving through review. */
const REFRESH_MS = 5000;

function ClipRow({ clip }: { clip: Clip }) {
  const cells = scoreCells(clip.scores);
  const reasons = clip.reasons ?? [];
  return (
    <tr>
      <td className="clip-name">{clip.filename ?? clip.id}</td>
      <td>
        <span className={`badge badge-${clip.status}`}>{STATUS_LABELS[clip.status]}</span>
        {reasons.length > 0 ? (
          <ul className="reasons">
            {reasons.map((reason) => (
              <li key={`${reason.code}:${reason.field ?? ""}`}>{reason.message}</li>
            ))}
          </ul>
        ) : null}
      </td>
      <td>
        {cells === null ? (
          "—"
        ) : (
          <ul className="scores">
            {cells.map((cell) => (
              <li key={cell.name}>
                {cell.name} <strong>{cell.text}</strong>
              </li>
            ))}
          </ul>
        )}
      </td>
      <td>{clip.reward_wei ? formatShot(clip.reward_wei) : "—"}</td>
      <td>{formatDate(clip.created_at)}</td>
    </tr>
  );
}

interface ClipList {
  readonly items: readonly Clip[];
  readonly next: string | null;
}

/** The signed-in contributor's clips, filterable by status, refreshed while any is moving. */
export function MyClips() {
  const address = useSignedInAddress();
  const filterId = useId();
  const [status, setStatus] = useState<ClipStatus | "">("");
  const [list, setList] = useState<ClipList | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);

  const fetchPage = useCallback(
    async (cursor: string | null, limit: number): Promise<ClipList> => {
      const { data, error: failure } = await api.GET("/api/v1/clips", {
        params: { query: { limit, ...(status ? { status: [status] } : {}), ...(cursor ? { cursor } : {}) } },
      });
      if (data === undefined) throw new Error(apiErrorText(failure));
      return { items: data.items, next: data.next_cursor ?? null };
    },
    [status],
  );

  // First page whenever the address or the filter changes.
  useEffect(() => {
    setList(null);
    setError(null);
    if (address === null) return undefined;
    let live = true;
    fetchPage(null, PAGE_SIZE).then(
      (page) => live && setList(page),
      (failure: unknown) => live && setError(String(failure instanceof Error ? failure.message : failure)),
    );
    return () => {
      live = false;
    };
  }, [address, fetchPage]);

  // While a shown clip is still in review, refresh what is shown.
  const moving = list?.items.some((clip) => MOVING_STATUSES.includes(clip.status)) ?? false;
  const shown = list?.items.length ?? 0;
  useEffect(() => {
    if (!moving || address === null) return undefined;
    const timer = window.setTimeout(() => {
      fetchPage(null, Math.min(100, Math.max(PAGE_SIZE, shown))).then(setList, () => undefined);
    }, REFRESH_MS);
    return () => window.clearTimeout(timer);
  }, [moving, shown, list, address, fetchPage]);

  const loadMore = (): void => {
    if (list?.next === null || list === null) return;
    setLoadingMore(true);
    fetchPage(list.next, PAGE_SIZE)
      .then(
        (page) => setList({ items: [...list.items, ...page.items], next: page.next }),
        (failure: unknown) => setError(failure instanceof Error ? failure.message : String(failure)),
      )
      .finally(() => setLoadingMore(false));
  };

  return (
    <Page title="My clips" intro="Your uploaded clips, where each is in review, and its scores.">
      {address === null ? <p>Sign in to see your clips.</p> : null}
      {address !== null ? (
        <div className="toolbar">
          <label htmlFor={filterId}>Status</label>
          <select id={filterId} value={status} onChange={(event) => setStatus(event.target.value as ClipStatus | "")}>
            <option value="">All</option>
            {Object.entries(STATUS_LABELS).map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </div>
      ) : null}
      {error !== null ? <LoadError text={error} /> : null}
      {address !== null && list === null && error === null ? <Loading what="your clips" /> : null}
      {list !== null && list.items.length === 0 ? (
        <p>
          {status === "" ? "No clips yet." : "No clips with this status."} <Link to="/upload">Upload clips</Link>
        </p>
      ) : null}
      {list !== null && list.items.length > 0 ? (
        <div className="table-scroll">
          <table>
            <caption>Your clips, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Clip</th>
                <th scope="col">Status</th>
                <th scope="col">Scores</th>
                <th scope="col">Reward</th>
                <th scope="col">Uploaded</th>
              </tr>
            </thead>
            <tbody>
              {list.items.map((clip) => (
                <ClipRow key={clip.id} clip={clip} />
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {list?.next ? (
        <button type="button" className="secondary" onClick={loadMore} disabled={loadingMore}>
          {loadingMore ? "Loading…" : "Load more clips"}
        </button>
      ) : null}
    </Page>
  );
}
