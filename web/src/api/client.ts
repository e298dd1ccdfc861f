// The one API client: openapi-fetch typed by the schema generated from the backend's
// OpenAPI document (`npm run gen`). Sessions ride on the backend's HttpOnly cookie, so no
// token is ever readable by scripts on the page.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema.gen";

/** The backend's models, by name. */
export type Schemas = components["schemas"];

/** Paths whose 401 means "not signed in" rather than "the session ended". */
const AUTH_PATHS = ["/api/v1/auth/nonce", "/api/v1/auth/verify", "/api/v1/auth/session"];

const unauthorizedListeners = new Set<() => void>();

/** Call `listener` whenever an API call answers 401 (the session expired or was revoked). */
export function onUnauthorized(listener: () => void): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

/** Tell the app its session ended, for a 401 of a request made outside this client (tus). */
export function reportUnauthorized(): void {
  unauthorizedListeners.forEach((listener) => listener());
}

const sessionWatch: Middleware = {
  onResponse({ request, response }) {
    const path = new URL(request.url).pathname;
    if (response.status === 401 && !AUTH_PATHS.includes(path)) {
      unauthorizedListeners.forEach((listener) => listener());
    }
    return undefined;
  },
};

/** A typed client of the backend at `baseUrl`, reporting 401s to {@link onUnauthorized}. */
export function createApiClient(baseUrl: string, fetchImpl?: typeof fetch) {
  const client = createClient<paths>({
    baseUrl,
    credentials: "same-origin",
    ...(fetchImpl === undefined ? {} : { fetch: fetchImpl }),
  });
  client.use(sessionWatch);
  return client;
}

/** The app's client; paths are the backend's, e.g. `api.GET("/api/v1/datasets")`. */
export const api = createApiClient(
  typeof window === "undefined" ? "http://localhost" : window.location.origin,
);

/** A sentence for people from an API error body (`{"error": {"code", "message"}}`). */
export function apiErrorText(error: unknown, fallback = "The server could not answer."): string {
  if (typeof error === "object" && error !== null && "error" in error) {
    const body = (error as { error: unknown }).error;
    if (typeof body === "object" && body !== null && "message" in body) {
      const message = (body as { message: unknown }).message;
      if (typeof message === "string" && message !== "") return message;
    }
  }
  return fallback;
}
