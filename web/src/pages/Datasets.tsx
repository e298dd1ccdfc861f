import { type Schemas, api } from "../api/client";
import { useQuery } from "../api/useQuery";
import { LoadError, Loading, Page } from "../components/Page";
import { formatBytes, formatShot } from "../format";

type Dataset = Schemas["DatasetView"];
type Version = Schemas["DatasetVersionView"];

/** The listed price of a version: the indexed on-chain one, else the one asked for. */
function versionPrice(version: Version, dataset: Dataset): string {
  const price = version.listing?.price ?? dataset.price ?? null;
  return price === null ? "Not priced" : formatShot(price);
}

function DatasetCard({ dataset }: { dataset: Dataset }) {
  const versions = dataset.versions ?? [];
  const latest = versions.at(-1);
  return (
    <li className="card">
      <h2>{dataset.title}</h2>
      <p>{dataset.description}</p>
      <dl className="facts">
        <div>
          <dt>Versions</dt>
          <dd>{versions.length}</dd>
        </div>
        <div>
          <dt>Samples</dt>
          <dd>{latest === undefined ? "—" : latest.samples.toLocaleString()}</dd>
        </div>
        <div>
          <dt>Price</dt>
          <dd>{latest === undefined ? "—" : versionPrice(latest, dataset)}</dd>
        </div>
      </dl>
      {versions.length > 0 ? (
        <table>
          <caption>Versions of {dataset.title}</caption>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Status</th>
              <th scope="col">Samples</th>
              <th scope="col">Size</th>
              <th scope="col">Price</th>
            </tr>
          </thead>
          <tbody>
            {versions.map((version) => (
              <tr key={version.number}>
                <td>v{version.number}</td>
                <td>{version.status}</td>
                <td>{version.samples.toLocaleString()}</td>
                <td>{formatBytes(version.total_bytes)}</td>
                <td>{versionPrice(version, dataset)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </li>
  );
}

/** The dataset catalogue. */
export function Datasets() {
  const datasets = useQuery("datasets", () => api.GET("/api/v1/datasets", { params: { query: { limit: 100 } } }));
  return (
    <Page title="Datasets" intro="Versioned datasets of accepted clips, with their size and price.">
      {datasets.state === "loading" ? <Loading what="datasets" /> : null}
      {datasets.state === "error" ? <LoadError text={datasets.text} /> : null}
      {datasets.state === "ready" ? (
        datasets.data.items.length === 0 ? (
          <p>No datasets yet.</p>
        ) : (
          <ul className="cards">
            {datasets.data.items.map((dataset) => (
              <DatasetCard key={dataset.id} dataset={dataset} />
            ))}
          </ul>
        )
      ) : null}
    </Page>
  );
}
