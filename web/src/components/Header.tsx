// The banner: app name, main navigation, wallet controls.
import { Link, NavLink } from "react-router";
import { WalletControls } from "./WalletControls";
import { WalletPicker } from "./WalletPicker";

/** The six sections, in navigation order. */
export const SECTIONS = [
  { path: "/upload", label: "Upload" },
  { path: "/clips", label: "My clips" },
  { path: "/rewards", label: "Rewards" },
  { path: "/datasets", label: "Datasets" },
  { path: "/licences", label: "My licences" },
  { path: "/validator", label: "Validator" },
] as const;

/** The page header. */
export function Header() {
  return (
    <header className="header">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <div className="header-top">
        <Link to="/" className="brand">
          Shotbank
        </Link>
        <WalletControls />
      </div>
      <nav aria-label="Main">
        <ul className="nav">
          {SECTIONS.map((section) => (
            <li key={section.path}>
              <NavLink to={section.path}>{section.label}</NavLink>
            </li>
          ))}
        </ul>
      </nav>
      <WalletPicker />
    </header>
  );
}
