import { useEffect, useMemo, useState } from "react";
import { Link, useParams } from "react-router";
import { type Schemas, api } from "../api/client";
import { useQuery } from "../api/useQuery";
import { LoadError, Loading, Page } from "../components/Page";
import { formatBytes, formatDate, formatShot } from "../format";
import { BuyLicence } from "../market/BuyLicence";
import { CopyButton } from "../market/Copy";
import { parseWei } from "../market/amounts";
import { type SamplePreview, readPreviews } from "../market/samples";
import { type CatalogueFilters, NO_FILTERS, filterOptions, humanize, matchesFilters } from "../market/filters";
import { useSignedInAddress } from "../wallet/WalletContext";

type Dataset = Schemas["DatasetView"];
type Version = Schemas["DatasetVersionView"];

/** The listed price of a version: the indexed on-chain one, else the one asked for. */
function versionPrice(version: Version, dataset: Dataset): string {
  const price = version.listing?.price ?? dataset.price ?? null;
  return price === null ? "Not priced" : formatShot(price);
}

/** A version's sale status in words. */
function listingText(version: Version): string {
  if (version.status !== "ready") return version.status === "packing" ? "Packing" : "Failed";
  switch (version.listing?.status) {
    case "listed":
      return "For sale";
    case "pending":
      return "Listing pending";
    case "unlisted":
      return "Off sale";
    default:
      return "Not for sale";
  }
}

/** `0x1234abcd…9876`: enough of a hash to tell versions apart at a glance. */
const shortHash = (hash: string): string => (hash.length > 18 ? `${hash.slice(0, 10)}…${hash.slice(-6)}` : hash);

/** A version hash or on-chain version id as one comparable key (lower case, no 0x). */
const versionKey = (hash: string): string => hash.toLowerCase().replace(/^0x/, "");

/** The version ids the signed-in wallet holds a licence for (empty when signed out). */
function useHeldVersions(): Set<string> {
  const signedIn = useSignedInAddress();
  const licences = useQuery(signedIn === null ? null : `licences:${signedIn}`, () => api.GET("/api/v1/licences"));
  return useMemo(
    () =>
      new Set(licences.state === "ready" ? licences.data.licences.map((licence) => versionKey(licence.version_id)) : []),
    [licences],
  );
}

function VersionTable({ dataset, held }: { dataset: Dataset; held: Set<string> }) {
  const versions = dataset.versions ?? [];
  return (
    <div className="table-scroll">
      <table>
        <caption>Versions of {dataset.title}</caption>
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">Status</th>
            <th scope="col">Samples</th>
            <th scope="col">Size</th>
            <th scope="col">Price</th>
            <th scope="col">Version hash</th>
          </tr>
        </thead>
        <tbody>
          {versions.map((version) => (
            <tr key={version.number}>
              <td>
                <Link to={`/datasets/${encodeURIComponent(dataset.id)}/v/${version.number}`}>
                  {dataset.title} v{version.number}
                </Link>
              </td>
              <td>
                {listingText(version)}
                {version.version_hash && held.has(versionKey(version.version_hash)) ? (
                  <span className="badge badge-accepted">Licensed</span>
                ) : null}
              </td>
              <td>{version.samples.toLocaleString()}</td>
              <td>{formatBytes(version.total_bytes)}</td>
              <td>{versionPrice(version, dataset)}</td>
              <td>
                {version.version_hash ? (
                  <>
                    <code className="hash" title={version.version_hash}>
                      {shortHash(version.version_hash)}
                    </code>{" "}
                    <CopyButton text={version.version_hash} label={`Copy hash of v${version.number}`} />
                  </>
                ) : (
                  "—"
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function DatasetCard({ dataset: summary, held }: { dataset: Dataset; held: Set<string> }) {
  // The list leaves versions out; each card reads its dataset (versions and listings) once.
  const detail = useQuery(`dataset:${summary.id}`, () =>
    api.GET("/api/v1/datasets/{dataset_id}", { params: { path: { dataset_id: summary.id } } }),
  );
  const dataset = detail.state === "ready" ? detail.data : summary;
  const versions = dataset.versions ?? [];
  return (
    <li className="card card-wide">
      <h2>{dataset.title}</h2>
      <p>{dataset.description}</p>
      <dl className="facts">
        <div>
          <dt>Versions</dt>
          <dd>{versions.length}</dd>
        </div>
        <div>
          <dt>Licence</dt>
          <dd className="terms">{dataset.licence_terms || "—"}</dd>
        </div>
      </dl>
      {detail.state === "loading" ? <Loading what={`versions of ${summary.title}`} /> : null}
      {detail.state === "error" ? <LoadError text={detail.text} /> : null}
      {detail.state === "ready" ? (
        versions.length > 0 ? (
          <VersionTable dataset={dataset} held={held} />
        ) : (
          <p>No versions yet.</p>
        )
      ) : null}
    </li>
  );
}

function FilterSelect({
  label,
  value,
  options,
  onChange,
}: {
  label: string;
  value: string;
  options: readonly string[];
  onChange: (value: string) => void;
}) {
  return (
    <label className="field">
      {label}{" "}
      <select value={value} onChange={(event) => onChange(event.target.value)}>
        <option value="">Any</option>
        {options.map((option) => (
          <option key={option} value={option}>
            {humanize(option)}
          </option>
        ))}
      </select>
    </label>
  );
}

/** The dataset catalogue, filtered in the browser. */
export function Datasets() {
  const datasets = useQuery("datasets", () => api.GET("/api/v1/datasets", { params: { query: { limit: 100 } } }));
  const held = useHeldVersions();
  const [chosen, setChosen] = useState<CatalogueFilters>(NO_FILTERS);
  const items = datasets.state === "ready" ? datasets.data.items : [];
  const filters = items.map((dataset) => dataset.filter);
  const shown = items.filter((dataset) => matchesFilters(dataset.filter, chosen));
  const set = (key: keyof CatalogueFilters) => (value: string) => setChosen({ ...chosen, [key]: value });
  return (
    <Page title="Datasets" intro="Versioned datasets of accepted clips, with their size, terms and price.">
      {datasets.state === "loading" ? <Loading what="datasets" /> : null}
      {datasets.state === "error" ? <LoadError text={datasets.text} /> : null}
      {datasets.state === "ready" ? (
        items.length === 0 ? (
          <p>No datasets yet.</p>
        ) : (
          <>
            <div role="search" aria-label="Filter datasets" className="toolbar">
              <FilterSelect label="Camera move" value={chosen.cameraMove} options={filterOptions(filters, "camera_movements")} onChange={set("cameraMove")} />
              <FilterSelect label="Lighting" value={chosen.lighting} options={filterOptions(filters, "lighting_setups")} onChange={set("lighting")} />
              <FilterSelect label="Audio style" value={chosen.audioStyle} options={filterOptions(filters, "audio_genres")} onChange={set("audioStyle")} />
              <FilterSelect label="Min score" value={chosen.minScore} options={["0.5", "0.6", "0.7", "0.8", "0.9"]} onChange={set("minScore")} />
            </div>
            <p role="status">
              {shown.length} of {items.length} datasets
            </p>
            <ul className="cards cards-wide">
              {shown.map((dataset) => (
                <DatasetCard key={dataset.id} dataset={dataset} held={held} />
              ))}
            </ul>
          </>
        )
      ) : null}
    </Page>
  );
}

/** How many samples the version page previews. */
const PREVIEWS = 4;

/** Posters and facts of the version's first few samples (from its public manifest). */
function Samples({ datasetId, number }: { datasetId: string; number: number }) {
  const [samples, setSamples] = useState<SamplePreview[] | null>(null);
  useEffect(() => {
    let live = true;
    api
      .GET("/api/v1/datasets/{dataset_id}/versions/{number}/manifest.jsonl", {
        params: { path: { dataset_id: datasetId, number } },
        parseAs: "stream",
      })
      .then(({ data }) => (data ? readPreviews(data, PREVIEWS) : []))
      .then(
        (rows) => {
          if (live) setSamples(rows);
        },
        () => {
          // Previews are a nicety: without them the page still says everything else.
          if (live) setSamples([]);
        },
      );
    return () => {
      live = false;
    };
  }, [datasetId, number]);
  if (samples === null) return <Loading what="sample previews" />;
  if (samples.length === 0) return <p>No previews available.</p>;
  return (
    <ul className="samples">
      {samples.map((sample) => (
        <li key={sample.clipId} className="sample">
          <img
            src={`/api/v1/clips/${encodeURIComponent(sample.clipId)}/poster`}
            alt={`Poster of sample ${sample.clipId.slice(0, 8)}`}
            loading="lazy"
            width={160}
            height={90}
          />
          <span>
            {[
              sample.durationS === null ? null : `${sample.durationS.toFixed(1)} s`,
              sample.width === null || sample.height === null ? null : `${sample.width}×${sample.height}`,
              sample.cameraMove === null ? null : humanize(sample.cameraMove),
              sample.quality === null ? null : `quality ${sample.quality.toFixed(2)}`,
            ]
              .filter((part) => part !== null)
              .join(" · ")}
          </span>
        </li>
      ))}
    </ul>
  );
}

function VersionDetail({ dataset, version, held, onGranted }: { dataset: Dataset; version: Version; held: boolean; onGranted: () => void }) {
  const listing = version.listing ?? null;
  const price = parseWei(listing?.price);
  const buyable = listing?.status === "listed" && listing.listed === true && listing.market && price !== null && price > 0n;
  return (
    <>
      <dl className="facts">
        <div>
          <dt>Status</dt>
          <dd>{listingText(version)}</dd>
        </div>
        <div>
          <dt>Price</dt>
          <dd>{versionPrice(version, dataset)}</dd>
        </div>
        <div>
          <dt>Samples</dt>
          <dd>{version.samples.toLocaleString()}</dd>
        </div>
        <div>
          <dt>Size</dt>
          <dd>{formatBytes(version.total_bytes)}</dd>
        </div>
        <div>
          <dt>Shards</dt>
          <dd>{version.shards ?? "—"}</dd>
        </div>
        <div>
          <dt>Contributors</dt>
          <dd>{version.contributors}</dd>
        </div>
        <div>
          <dt>Frozen</dt>
          <dd>{formatDate(version.created_at)}</dd>
        </div>
      </dl>
      <h2>Version hash</h2>
      <p>
        <code className="hash">{version.version_hash ?? "not packed yet"}</code>{" "}
        {version.version_hash ? <CopyButton text={version.version_hash} label="Copy version hash" /> : null}
      </p>
      {version.status === "ready" ? (
        <>
          <h2>Samples</h2>
          <Samples datasetId={dataset.id} number={version.number} />
        </>
      ) : null}
      <h2>Licence terms</h2>
      <p className="terms">{dataset.licence_terms || "—"}</p>
      {listing?.terms_uri ? (
        <p>
          On-chain terms: <a className="wrap" href={listing.terms_uri}>{listing.terms_uri}</a>
        </p>
      ) : null}
      <h2>Licence</h2>
      {held ? (
        <p>
          You hold a licence for this version: <Link to="/licences">see My licences</Link> for the download snippet.
        </p>
      ) : buyable && listing.market ? (
        <BuyLicence
          market={listing.market}
          versionId={listing.version_id}
          price={price}
          chainId={listing.chain_id}
          onGranted={onGranted}
        />
      ) : (
        <p>This version is not for sale.</p>
      )}
    </>
  );
}

/** One version of a dataset: facts, hash, terms and the buy flow (`/datasets/:id/v/:n`). */
export function DatasetVersion() {
  const { id = "", n = "" } = useParams();
  const number = /^[0-9]{1,9}$/.test(n) ? Number(n) : null;
  const dataset = useQuery(`dataset:${id}`, () => api.GET("/api/v1/datasets/{dataset_id}", { params: { path: { dataset_id: id } } }));
  const held = useHeldVersions();
  const [granted, setGranted] = useState(false);
  const version = dataset.state === "ready" ? (dataset.data.versions ?? []).find((each) => each.number === number) : undefined;
  const title = dataset.state === "ready" && number !== null ? `${dataset.data.title} v${number}` : "Dataset version";
  return (
    <Page title={title}>
      <p>
        <Link to="/datasets">All datasets</Link>
      </p>
      {dataset.state === "loading" ? <Loading what="the version" /> : null}
      {dataset.state === "error" ? <LoadError text={dataset.text} /> : null}
      {dataset.state === "ready" && version === undefined ? <p>This dataset has no version {n}.</p> : null}
      {dataset.state === "ready" && version !== undefined ? (
        <VersionDetail
          dataset={dataset.data}
          version={version}
          held={!granted && version.version_hash ? held.has(versionKey(version.version_hash)) : false}
          onGranted={() => setGranted(true)}
        />
      ) : null}
    </Page>
  );
}
