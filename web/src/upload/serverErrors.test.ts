import { describe, expect, it } from "vitest";
import { mapServerErrors } from "./serverErrors";

const KEYS = ["scene", "scene.description", "scene.tags", "rights", "rights.attribution", "camera.direction"];

function body(details: unknown): unknown {
  return { error: { code: "validation_error", message: "The request is invalid (1 problem).", details } };
}

describe("mapServerErrors", () => {
  it("puts a message on the field its loc names", () => {
    const mapped = mapServerErrors(
      body([
        {
          loc: ["body", "annotation", "scene", "description"],
          msg: "String should have at least 10 characters",
          type: "string_too_short",
        },
      ]),
      KEYS,
      "fallback",
    );
    expect(mapped).toEqual({
      fields: { "scene.description": ["String should have at least 10 characters"] },
      general: [],
    });
  });

  it("skips list indexes and falls back to the deepest known key", () => {
    const mapped = mapServerErrors(
      body([
        { loc: ["body", "annotation", "scene", "tags", 3], msg: "too long", type: "string_too_long" },
        { loc: ["body", "annotation", "rights"], msg: "Value error, attribution is required", type: "value_error" },
        { loc: ["body", "annotation", "scene", "unknown_key"], msg: "Extra inputs", type: "extra_forbidden" },
      ]),
      KEYS,
      "fallback",
    );
    expect(mapped.fields).toEqual({
      "scene.tags": ["too long"],
      rights: ["attribution is required"],
      scene: ["Extra inputs"],
    });
    expect(mapped.general).toEqual([]);
  });

  it("keeps problems outside the annotation or of no known field as general", () => {
    const mapped = mapServerErrors(
      body([
        { loc: ["body", "upload_id"], msg: "String should match pattern", type: "string_pattern_mismatch" },
        { loc: ["body", "annotation", "lighting", "setup"], msg: "Field required", type: "missing" },
      ]),
      KEYS,
      "fallback",
    );
    expect(mapped.fields).toEqual({});
    expect(mapped.general).toEqual(["upload_id: String should match pattern", "annotation.lighting.setup: Field required"]);
  });

  it("uses the fallback when the body has no details", () => {
    expect(mapServerErrors({ error: { code: "x", message: "m" } }, KEYS, "Bad request.")).toEqual({
      fields: {},
      general: ["Bad request."],
    });
    expect(mapServerErrors("not json", KEYS, "Bad request.").general).toEqual(["Bad request."]);
  });
});
