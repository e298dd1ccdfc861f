import { describe, expect, it } from "vitest";
import { claimArguments } from "./claim";
import { isUnsupportedMethod, isUserRejection, walletErrorCode } from "./errors";
import { NO_FILTERS, filterOptions, matchesFilters } from "./filters";
import { previewOf, readPreviews } from "./samples";
import { downloadFolder, sdkSnippet } from "./snippet";

const ACCOUNT = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";

describe("claimArguments", () => {
  it("passes the checksummed account, the cumulative amount and the proof", () => {
    const node = `0x${"ab".repeat(32)}`;
    const [account, amount, proof] = claimArguments(ACCOUNT, {
      distributor: ACCOUNT,
      cumulative_amount: "5000000000000000000",
      proof: [node],
    });
    expect(account).toBe("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    expect(amount).toBe(5n * 10n ** 18n);
    expect(proof).toEqual([node]);
  });

  it("refuses a malformed amount or proof node", () => {
    const claim = { distributor: ACCOUNT, cumulative_amount: "1", proof: [] as string[] };
    expect(() => claimArguments(ACCOUNT, { ...claim, cumulative_amount: "1.5" })).toThrow(/amount/);
    expect(() => claimArguments(ACCOUNT, { ...claim, proof: ["0x1234"] })).toThrow(/proof/);
    expect(() => claimArguments(ACCOUNT, { ...claim, proof: Array(65).fill(`0x${"00".repeat(32)}`) })).toThrow(/too long/);
  });
});

describe("wallet error codes", () => {
  it("finds the wallet's code under viem's wrappers", () => {
    const wrapped = { message: "outer", cause: { message: "middle", cause: { code: 4001 } } };
    expect(walletErrorCode(wrapped)).toBe(4001);
    expect(isUserRejection(wrapped)).toBe(true);
    expect(isUnsupportedMethod({ cause: { code: 4200 } })).toBe(true);
    expect(isUnsupportedMethod({ code: -32601 })).toBe(true);
    expect(isUnsupportedMethod({ code: -32000 })).toBe(false);
    expect(walletErrorCode("text")).toBeUndefined();
  });
});

describe("catalogue filters", () => {
  const beach = { camera_movements: ["dolly_in", "static"], min_quality: 0.8 };
  const open = {};

  it("lists every value the datasets select, once and sorted", () => {
    expect(filterOptions([beach, { camera_movements: ["pan"] }, open], "camera_movements")).toEqual(["dolly_in", "pan", "static"]);
  });

  it("keeps datasets that select the value or do not restrict it", () => {
    const chosen = { ...NO_FILTERS, cameraMove: "static" };
    expect(matchesFilters(beach, chosen)).toBe(true);
    expect(matchesFilters(open, chosen)).toBe(true);
    expect(matchesFilters({ camera_movements: ["pan"] }, chosen)).toBe(false);
  });

  it("keeps datasets whose minimum quality is at least the chosen score", () => {
    expect(matchesFilters(beach, { ...NO_FILTERS, minScore: "0.8" })).toBe(true);
    expect(matchesFilters(beach, { ...NO_FILTERS, minScore: "0.9" })).toBe(false);
    expect(matchesFilters(open, { ...NO_FILTERS, minScore: "0.5" })).toBe(false);
  });
});

describe("sdkSnippet", () => {
  it("downloads the version with the SDK, values quoted", () => {
    const snippet = sdkSnippet("http://127.0.0.1:8000", "ds_1", 2, downloadFolder("Beach Walks!", 2));
    expect(snippet).toContain('client = ShotbankClient("http://127.0.0.1:8000", account=account)');
    expect(snippet).toContain('client.version("ds_1", 2).download("data/beach-walks-v2")');
  });
});

describe("readPreviews", () => {
  const row = (id: string) =>
    JSON.stringify({
      clip_id: id,
      media: { duration_s: 2, width: 160, height: 120 },
      annotation: { camera: { movement: "static" } },
      scores: { quality: 0.9 },
    });
  const streamOf = (...chunks: string[]) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
        controller.close();
      },
    });

  it("reads the first complete rows only, across chunk boundaries", async () => {
    const text = `${row("a")}\n${row("b")}\n${row("c")}\n`;
    const previews = await readPreviews(streamOf(text.slice(0, 30), text.slice(30)), 2);
    expect(previews.map((preview) => preview.clipId)).toEqual(["a", "b"]);
    expect(previews[0]).toEqual({ clipId: "a", durationS: 2, width: 160, height: 120, cameraMove: "static", quality: 0.9 });
  });

  it("drops a row cut by the end of the read and rows that are not manifest rows", async () => {
    const previews = await readPreviews(streamOf(`${row("a")}\nnot json\n{"clip_id": "../x"}\n${row("b").slice(0, 20)}`), 4);
    expect(previews.map((preview) => preview.clipId)).toEqual(["a"]);
    expect(previewOf("[1]")).toBeNull();
  });
});
