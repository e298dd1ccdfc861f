import { describe, expect, it } from "vitest";
import { scoreCells } from "./clips";

describe("scoreCells", () => {
  it("is null until the clip is scored", () => {
    expect(scoreCells(null)).toBeNull();
    expect(scoreCells(undefined)).toBeNull();
  });

  it("shows quality then the scored components as percentages", () => {
    const cells = scoreCells({
      quality: 0.816,
      components: { audio: null, scene: 0.9, camera: 0.333 },
      decision: "accepted",
    });
    expect(cells).toEqual([
      { name: "quality", text: "82%" },
      { name: "scene", text: "90%" },
      { name: "camera", text: "33%" },
      { name: "audio", text: "—" },
    ]);
  });

  it("shows a dash for values that are not scores", () => {
    expect(scoreCells({ quality: 7, components: "nope" })).toEqual([{ name: "quality", text: "—" }]);
  });
});
