import { Link } from "react-router";
import { Page } from "../components/Page";

/** The landing page. */
export function Home() {
  return (
    <Page
      title="Annotated clips for video models"
      intro="Contributors upload and annotate camera-aware video clips, validators score them, and trainers license versioned datasets."
    >
      <ul className="cards">
        <li className="card">
          <h2>Contribute</h2>
          <p>Upload clips with their annotation and camera path; accepted clips earn SHOT.</p>
          <Link to="/upload">Upload clips</Link>
        </li>
        <li className="card">
          <h2>Train</h2>
          <p>Browse datasets with their licence terms, then buy a version on-chain.</p>
          <Link to="/datasets">Browse datasets</Link>
        </li>
        <li className="card">
          <h2>Validate</h2>
          <p>Stake SHOT, run a scoring node, and earn for agreeing with consensus.</p>
          <Link to="/validator">Validator</Link>
        </li>
      </ul>
    </Page>
  );
}
