import { describe, expect, it } from "vitest";
import { buildAnnotation, directionOptions, fieldFor, formSections, humanize, splitTags } from "./schemaForm";

// A cut-down annotation schema in the served document's shapes ($defs, $ref, nullable
// anyOf, enums, arrays of enums, the camera's if/then rules).
const SCHEMA = {
  type: "object",
  required: ["schema_version", "scene", "camera", "rights"],
  properties: {
    schema_version: { const: "1", type: "string" },
    scene: { $ref: "#/$defs/Scene" },
    rights: { $ref: "#/$defs/Rights", description: "Licence and releases." },
    camera: { $ref: "#/$defs/Camera" },
    audio: { anyOf: [{ $ref: "#/$defs/Audio" }, { type: "null" }], default: null, title: "Audio" },
  },
  $defs: {
    TimeOfDay: { enum: ["dawn", "golden_hour"], type: "string" },
    Licence: { enum: ["cc0-1.0", "cc-by-4.0"], type: "string" },
    AmbienceTag: { enum: ["wind", "rain"], type: "string" },
    MovementDirection: { enum: ["left", "right", "up", "down"], type: "string" },
    CameraMovement: { enum: ["static", "pan", "tilt"], type: "string" },
    Scene: {
      type: "object",
      title: "Scene",
      required: ["description"],
      properties: {
        description: { type: "string", title: "Description", minLength: 10, maxLength: 2000 },
        tags: { type: "array", title: "Tags", items: { type: "string", maxLength: 40 }, maxItems: 32 },
        time_of_day: { anyOf: [{ $ref: "#/$defs/TimeOfDay" }, { type: "null" }], title: "Time of day" },
      },
    },
    Rights: {
      type: "object",
      title: "Rights",
      required: ["licence"],
      properties: {
        licence: { $ref: "#/$defs/Licence" },
        attribution: { anyOf: [{ type: "string", maxLength: 300 }, { type: "null" }], title: "Attribution" },
      },
    },
    Camera: {
      type: "object",
      title: "Camera",
      required: ["movement"],
      allOf: [
        { if: { properties: { movement: { const: "static" } } }, then: { properties: { direction: { type: "null" } } } },
        {
          if: { properties: { movement: { const: "pan" } } },
          then: { properties: { direction: { enum: ["left", "right"] } }, required: ["direction"] },
        },
      ],
      properties: {
        movement: { $ref: "#/$defs/CameraMovement", title: "Movement" },
        direction: { anyOf: [{ $ref: "#/$defs/MovementDirection" }, { type: "null" }], title: "Direction" },
        path: { anyOf: [{ $ref: "#/$defs/Path" }, { type: "null" }] },
      },
    },
    Path: { type: "object", properties: { keyframes: { type: "array" } } },
    Audio: {
      type: "object",
      title: "Audio",
      required: ["dialogue"],
      properties: {
        dialogue: { type: "boolean", title: "Dialogue" },
        ambience: { type: "array", items: { $ref: "#/$defs/AmbienceTag" }, maxItems: 16, title: "Ambience" },
        loudness: { anyOf: [{ type: "integer", minimum: 1000, maximum: 20000 }, { type: "null" }], title: "Kelvin" },
      },
    },
  },
} as const;

describe("formSections", () => {
  const sections = formSections(SCHEMA);

  it("makes one section per object property, in the page's order, audio opt-in", () => {
    expect(sections.map((section) => [section.key, section.optional])).toEqual([
      ["scene", false],
      ["camera", false],
      ["audio", true],
      ["rights", false],
    ]);
  });

  it("maps strings, enums, arrays, booleans and numbers to controls", () => {
    const scene = sections[0]!;
    expect(scene.fields.map((field) => [field.key, field.kind, field.required])).toEqual([
      ["scene.description", "textarea", true],
      ["scene.tags", "tags", false],
      ["scene.time_of_day", "select", false],
    ]);
    expect(scene.fields[2]!.options).toEqual(["dawn", "golden_hour"]);
    const audio = sections[2]!;
    expect(audio.fields.map((field) => [field.key, field.kind])).toEqual([
      ["audio.dialogue", "checkbox"],
      ["audio.ambience", "multiselect"],
      ["audio.loudness", "number"],
    ]);
    expect(audio.fields[1]).toMatchObject({ options: ["wind", "rain"], maxItems: 16 });
    expect(audio.fields[2]).toMatchObject({ integer: true, min: 1000, max: 20000 });
  });

  it("leaves nested objects (the camera path) to their own editor", () => {
    expect(sections[1]!.fields.map((field) => field.key)).toEqual(["camera.movement", "camera.direction"]);
  });

  it("labels a field by its title, else by its humanised name", () => {
    expect(sections[3]!.fields.map((field) => field.label)).toEqual(["Licence", "Attribution"]);
    expect(fieldFor(SCHEMA, "x.frame_rate", { type: "number" }, false)?.label).toBe("Frame rate");
  });

  it("fails loudly on a dangling $ref", () => {
    expect(() => fieldFor(SCHEMA, "x.y", { $ref: "#/$defs/Nope" }, false)).toThrow(/no definition/);
  });
});

describe("directionOptions", () => {
  it("follows the camera's if/then rules", () => {
    expect(directionOptions(SCHEMA, "pan")).toEqual(["left", "right"]);
    expect(directionOptions(SCHEMA, "static")).toEqual([]);
  });

  it("offers every direction for a movement without a rule", () => {
    expect(directionOptions(SCHEMA, "tilt")).toEqual(["left", "right", "up", "down"]);
  });
});

describe("buildAnnotation", () => {
  const sections = formSections(SCHEMA);

  it("converts values, drops empty controls and adds the schema version", () => {
    const annotation = buildAnnotation(SCHEMA, sections, {
      "scene.description": "A quiet street at dawn.",
      "scene.tags": "street, dawn ,, street",
      "scene.time_of_day": "",
      "camera.movement": "pan",
      "camera.direction": "left",
      "rights.licence": "cc0-1.0",
      "rights.attribution": "   ",
    });
    expect(annotation).toEqual({
      schema_version: "1",
      scene: { description: "A quiet street at dawn.", tags: ["street", "dawn"] },
      camera: { movement: "pan", direction: "left" },
      rights: { licence: "cc0-1.0" },
    });
  });

  it("sends an opt-in section only when it is switched on", () => {
    const values = { "audio.dialogue": true, "audio.ambience": ["rain"], "audio.loudness": "3200" };
    expect(buildAnnotation(SCHEMA, sections, values)).not.toHaveProperty("audio");
    expect(buildAnnotation(SCHEMA, sections, { ...values, audio: true })["audio"]).toEqual({
      dialogue: true,
      ambience: ["rain"],
      loudness: 3200,
    });
  });

  it("sends an unchecked checkbox as false and a non-number as typed (the server explains)", () => {
    const annotation = buildAnnotation(SCHEMA, sections, { audio: true, "audio.loudness": "warm" });
    expect(annotation["audio"]).toEqual({ dialogue: false, loudness: "warm" });
  });
});

describe("helpers", () => {
  it("humanises snake_case terms and leaves licence ids alone", () => {
    expect(humanize("golden_hour")).toBe("Golden hour");
    expect(humanize("cc-by-4.0")).toBe("cc-by-4.0");
  });

  it("splits tags on commas and new lines", () => {
    expect(splitTags("a, b\nc,,a")).toEqual(["a", "b", "c"]);
  });
});
