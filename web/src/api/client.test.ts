import { describe, expect, it } from "vitest";
import { apiErrorText, createApiClient, onUnauthorized } from "./client";

/** A server that answers every request with `status` and an error body. */
function server(status: number): typeof fetch {
  return async () =>
    new Response(JSON.stringify({ error: { code: "x", message: `answered ${status}` } }), {
      status,
      headers: { "content-type": "application/json" },
    });
}

describe("createApiClient", () => {
  it("reports a 401 from a resource as an ended session", async () => {
    let ended = 0;
    const stop = onUnauthorized(() => (ended += 1));
    const api = createApiClient("http://backend.test", server(401));
    const { error } = await api.GET("/api/v1/clips");
    stop();
    expect(ended).toBe(1);
    expect(apiErrorText(error)).toBe("answered 401");
  });

  it("does not treat a 401 from the sign-in routes as an ended session", async () => {
    let ended = 0;
    const stop = onUnauthorized(() => (ended += 1));
    const api = createApiClient("http://backend.test", server(401));
    await api.GET("/api/v1/auth/session");
    stop();
    expect(ended).toBe(0);
  });

  it("ignores other errors", async () => {
    let ended = 0;
    const stop = onUnauthorized(() => (ended += 1));
    await createApiClient("http://backend.test", server(403)).GET("/api/v1/clips");
    stop();
    expect(ended).toBe(0);
  });
});

describe("apiErrorText", () => {
  it("reads the backend's error message", () => {
    expect(apiErrorText({ error: { code: "not_found", message: "No such clip." } })).toBe("No such clip.");
  });

  it("falls back for anything else", () => {
    expect(apiErrorText(undefined, "fallback")).toBe("fallback");
    expect(apiErrorText({ detail: "x" })).toBe("The server could not answer.");
  });
});
