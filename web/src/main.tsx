// The Outpost web app: starts the session, keeps the presence feed running while signed in, and renders the page for the URL.
import { render } from "preact";
import { auth, boot } from "./auth.ts";
import { interceptLinks, location$, navigate, parseRoute, useStore } from "./lib.ts";
import { AccessPage } from "./pages/access.tsx";
import { DevicePage } from "./pages/device.tsx";
import { DevicesPage } from "./pages/devices.tsx";
import { Home } from "./pages/home.tsx";
import { OpenPage } from "./pages/open.tsx";
import { SessionPage } from "./pages/session.tsx";
import { SignIn, Starting } from "./pages/signin.tsx";
import { feed } from "./presence.ts";
import { Frame, Notice } from "./ui.tsx";
import "./styles.css";

function App() {
  const state = useStore(auth);
  const { path } = useStore(location$);
  const route = parseRoute(path);

  if (state.status === "loading") return <Starting />;
  if (state.status === "unreachable") {
    return (
      <Starting
        message={state.message}
        onRetry={() => {
          auth.set({ status: "loading" });
          void boot();
        }}
      />
    );
  }
  // Signed out (or the session ended): sign in right here, on the same URL, so the page the user wanted comes back after.
  if (state.status === "signed-out") return <SignIn config={state.config} reason={state.reason} />;

  switch (route.page) {
    case "home":
      return <Home />;
    case "session":
      return <SessionPage key={route.id} id={route.id} />;
    case "device":
      return <DevicePage />;
    case "devices":
      return <DevicesPage />;
    case "access":
      return <AccessPage />;
    case "open":
      return <OpenPage />;
    case "enroll":
      // Already signed in (e.g. the link was opened twice): nothing to do here.
      queueMicrotask(() => navigate("/", { replace: true }));
      return null;
    default:
      return (
        <Frame title="Not found">
          <Notice tone="error">There is no page at {path}.</Notice>
          <p>
            <a href="/">Go to sessions</a>
          </p>
        </Frame>
      );
  }
}

// The feed runs exactly while someone is signed in, whichever page is open, so alerts are never missed.
auth.subscribe(() => {
  if (auth.get().status === "signed-in") feed.start();
  else feed.stop();
});

function registerServiceWorker(): void {
  // The dev server has no /sw.js (it is built from src/sw.ts); production builds and `npm start` do.
  if (import.meta.env.DEV || !("serviceWorker" in navigator) || !window.isSecureContext) return;
  addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch((err: unknown) => console.warn("service worker not registered", err));
  });
}

interceptLinks();
render(<App />, document.getElementById("app")!);
registerServiceWorker();
void boot();
