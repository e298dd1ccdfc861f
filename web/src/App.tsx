import { useEffect, useRef } from "react";
import { Route, Routes, useLocation } from "react-router";
import { Header } from "./components/Header";
import { DatasetVersion, Datasets } from "./pages/Datasets";
import { Home } from "./pages/Home";
import { MyClips } from "./pages/MyClips";
import { Rewards } from "./pages/Rewards";
import { MyLicences } from "./pages/MyLicences";
import { NotFound, Validator } from "./pages/Simple";
import { Upload } from "./pages/Upload";

/** Layout and routes. */
export function App() {
  const { pathname } = useLocation();
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  // After an in-app navigation, move focus to the new page so keyboard and screen-reader
  // users start there (a full page load starts at the top already).
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.focus();
  }, [pathname]);

  return (
    <>
      <Header />
      <main id="main" tabIndex={-1} ref={main}>
        <Routes>
          <Route path="/" element={<Home />} />
          <Route path="/upload" element={<Upload />} />
          <Route path="/clips" element={<MyClips />} />
          <Route path="/rewards" element={<Rewards />} />
          <Route path="/datasets" element={<Datasets />} />
          <Route path="/datasets/:id/v/:n" element={<DatasetVersion />} />
          <Route path="/licences" element={<MyLicences />} />
          <Route path="/validator" element={<Validator />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </main>
    </>
  );
}
