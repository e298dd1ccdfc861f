// Sections whose full pages come later: a heading and what they will do.
import { Link } from "react-router";
import { Page } from "../components/Page";

/** Validator staking and reports. */
export function Validator() {
  return <Page title="Validator" intro="Stake SHOT, follow your node's reports and its agreement with consensus." />;
}

/** Unknown paths. */
export function NotFound() {
  return (
    <Page title="Page not found" intro="Nothing lives at this address.">
      <p>
        <Link to="/">Back to the start</Link>
      </p>
    </Page>
  );
}
