import { describe, expect, it } from "vitest";
import {
  forward,
  nextRow,
  orientation,
  parsePathFile,
  parseRe10kText,
  toSchemaPath,
  topDown,
  yawPitch,
} from "./cameraPath";

function close(actual: readonly number[], expected: readonly number[]): void {
  actual.forEach((value, index) => expect(value).toBeCloseTo(expected[index]!, 5));
}

describe("orientation", () => {
  it("looks down +z at rest", () => {
    expect(orientation(0, 0)).toEqual([1, 0, 0, 0]);
    close(forward(orientation(0, 0)), [0, 0, 1]);
  });

  it("turns right (+x) with positive yaw and up (-y) with positive pitch", () => {
    close(forward(orientation(90, 0)), [1, 0, 0]);
    close(forward(orientation(0, 30)), [0, -0.5, Math.sqrt(3) / 2]);
  });

  it("is a unit quaternion with w >= 0 that yawPitch inverts", () => {
    for (const [yaw, pitch] of [
      [0, 0],
      [45, 10],
      [-120, -35],
      [179, 60],
    ] as const) {
      const q = orientation(yaw, pitch);
      expect(Math.hypot(...q)).toBeCloseTo(1, 5);
      expect(q[0]).toBeGreaterThanOrEqual(0);
      const back = yawPitch(q);
      expect(back.yaw_deg).toBeCloseTo(yaw, 2);
      expect(back.pitch_deg).toBeCloseTo(pitch, 2);
    }
  });
});

describe("parsePathFile", () => {
  const path = {
    position_scale: "arbitrary",
    keyframes: [
      { time_s: 0, position_m: [0, 0, 0], orientation_wxyz: [1, 0, 0, 0] },
      { time_s: 2, position_m: [1, 0, 2], orientation_wxyz: orientation(90, 0) },
    ],
  };

  it("reads a camera.path object, a whole annotation or a bare list", () => {
    for (const document of [path, { camera: { movement: "truck", path } }, path.keyframes]) {
      const { rows } = parsePathFile(JSON.stringify(document));
      expect(rows.map((row) => [row.time_s, row.x, row.z, Math.round(row.yaw_deg)])).toEqual([
        [0, 0, 0, 0],
        [2, 1, 2, 90],
      ]);
    }
    expect(parsePathFile(JSON.stringify(path)).scale).toBe("arbitrary");
    expect(parsePathFile(JSON.stringify(path.keyframes)).scale).toBe("metric");
  });

  it("says which keyframe is malformed", () => {
    const bad = [path.keyframes[0], { time_s: 1, position_m: [0, 0], orientation_wxyz: [1, 0, 0, 0] }];
    expect(() => parsePathFile(JSON.stringify(bad))).toThrow(/Keyframe 2/);
    expect(() => parsePathFile("0 1 2 3")).toThrow(/Line 1: a pose needs 19 numbers/);
    expect(() => parsePathFile("https://example.org/video")).toThrow(/neither JSON/);
    expect(() => parsePathFile("{}")).toThrow(/no keyframes/);
  });

  it("round-trips through the schema's shape", () => {
    const { rows, scale } = parsePathFile(JSON.stringify(path));
    const again = toSchemaPath(rows, scale);
    expect(again.position_scale).toBe("arbitrary");
    close(again.keyframes[1]!.orientation_wxyz, path.keyframes[1]!.orientation_wxyz);
  });
});

describe("editing helpers", () => {
  it("adds a row one second after the last, same pose", () => {
    expect(nextRow([])).toEqual({ time_s: 0, x: 0, y: 0, z: 0, yaw_deg: 0, pitch_deg: 0 });
    expect(nextRow([{ time_s: 1.5, x: 1, y: 2, z: 3, yaw_deg: 10, pitch_deg: 5 }])).toMatchObject({ time_s: 2.5, x: 1 });
  });

  it("draws forward up the page and a right turn to the right", () => {
    const picture = topDown(
      [
        { time_s: 0, x: 0, y: 0, z: 0, yaw_deg: 0, pitch_deg: 0 },
        { time_s: 1, x: 0, y: 0, z: 1, yaw_deg: 90, pitch_deg: 0 },
      ],
      100,
    );
    const [first, second] = picture.arrows;
    expect(first!.y2).toBeLessThan(first!.y1); // looking forward = up the page
    expect(second!.y1).toBeLessThan(first!.y1); // moved forward = higher on the page
    expect(second!.x2).toBeGreaterThan(second!.x1); // yaw 90 = looking right
    expect(picture.line.split(" ")).toHaveLength(2);
  });
});

describe("parseRe10kText", () => {
  // Two poses: at rest at the origin; then 0.5 s later turned 90° right (camera +z =
  // world +x) at world (1, 0, 2). World-to-camera: R = Rᵀ of camera-to-world, t = -R c.
  const TEXT = [
    "https://www.youtube.com/watch?v=abc",
    "1000000 0.5 0.9 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0",
    "1500000 0.5 0.9 0.5 0.5 0 0 0 0 -1 2 0 1 0 0 1 0 0 -1",
    "",
  ].join("\n");

  it("shifts time to 0 and recovers the camera centre and direction", () => {
    const rows = parseRe10kText(TEXT);
    expect(rows.map((row) => [row.time_s, row.x, row.y, row.z, row.yaw_deg, row.pitch_deg])).toEqual([
      [0, 0, 0, 0, 0, 0],
      [0.5, 1, 0, 2, 90, 0],
    ]);
  });

  it("is what parsePathFile reads from a non-JSON file, with an unknown scale", () => {
    const parsed = parsePathFile(TEXT);
    expect(parsed.scale).toBe("arbitrary");
    expect(parsed.rows).toHaveLength(2);
  });

  it("names the bad line", () => {
    expect(() => parseRe10kText(TEXT.replace("1500000 0.5", "1500000 x"))).toThrow(/Line 3/);
  });
});
