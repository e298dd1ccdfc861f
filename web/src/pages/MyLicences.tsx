import { Link } from "react-router";
import { type Schemas, api } from "../api/client";
import { useQuery } from "../api/useQuery";
import { LoadError, Loading, Page } from "../components/Page";
import { formatDate, formatShot } from "../format";
import { CopyButton } from "../market/Copy";
import { downloadFolder, sdkSnippet } from "../market/snippet";
import { useSignedInAddress } from "../wallet/WalletContext";

type Licence = Schemas["LicenceView"];
type Dataset = Schemas["DatasetView"];

function LicenceCard({ licence, dataset }: { licence: Licence; dataset: Dataset | undefined }) {
  const known = licence.dataset_id !== null && licence.dataset_id !== undefined && licence.number !== null && licence.number !== undefined;
  const name = dataset !== undefined && known ? `${dataset.title} v${licence.number}` : `Version ${licence.version_id.slice(0, 10)}…`;
  const snippet =
    known && licence.dataset_id && licence.number
      ? sdkSnippet(window.location.origin, licence.dataset_id, licence.number, downloadFolder(dataset?.slug ?? "dataset", licence.number))
      : null;
  return (
    <li className="card card-wide">
      <h2>
        {known && licence.dataset_id ? (
          <Link to={`/datasets/${encodeURIComponent(licence.dataset_id)}/v/${licence.number}`}>{name}</Link>
        ) : (
          name
        )}
      </h2>
      <dl className="facts">
        <div>
          <dt>Price paid</dt>
          <dd>{formatShot(licence.price)}</dd>
        </div>
        <div>
          <dt>Bought</dt>
          <dd>{licence.purchased_at ? formatDate(licence.purchased_at) : `block ${licence.block_number}`}</dd>
        </div>
        <div>
          <dt>Transaction</dt>
          <dd>
            <code className="hash">{licence.tx_hash}</code>
          </dd>
        </div>
      </dl>
      {snippet !== null ? (
        <figure className="snippet">
          <figcaption>Download with the Python SDK</figcaption>
          <pre tabIndex={0}>
            <code>{snippet}</code>
          </pre>
          <CopyButton text={snippet} />
        </figure>
      ) : (
        <p>This version is not served by this backend.</p>
      )}
    </li>
  );
}

/** Licences held by the signed-in address, each with a ready-to-copy SDK snippet. */
export function MyLicences() {
  const signedIn = useSignedInAddress();
  const licences = useQuery(signedIn === null ? null : `licences:${signedIn}`, () => api.GET("/api/v1/licences"));
  const datasets = useQuery(signedIn === null ? null : "datasets", () =>
    api.GET("/api/v1/datasets", { params: { query: { limit: 100 } } }),
  );
  const byId = new Map((datasets.state === "ready" ? datasets.data.items : []).map((dataset) => [dataset.id, dataset]));
  return (
    <Page title="My licences" intro="Dataset versions you hold a licence for, each with a ready-to-copy SDK snippet.">
      {signedIn === null ? <p>Connect your wallet and sign in to see your licences.</p> : null}
      {licences.state === "loading" ? <Loading what="licences" /> : null}
      {licences.state === "error" ? <LoadError text={licences.text} /> : null}
      {licences.state === "ready" ? (
        licences.data.licences.length === 0 ? (
          <p>
            No licences yet: <Link to="/datasets">browse the datasets</Link>.
          </p>
        ) : (
          <ul className="cards cards-wide">
            {licences.data.licences.map((licence) => (
              <LicenceCard
                key={`${licence.tx_hash}:${licence.log_index}`}
                licence={licence}
                dataset={licence.dataset_id ? byId.get(licence.dataset_id) : undefined}
              />
            ))}
          </ul>
        )
      ) : null}
    </Page>
  );
}
