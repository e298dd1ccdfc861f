// The SDK snippet a licence holder copies to download a version.

/** Python that downloads version `number` of `datasetId` from the backend at `origin`. */
export function sdkSnippet(origin: string, datasetId: string, number: number, folder: string): string {
  const quote = (value: string): string => JSON.stringify(value);
  return [
    "from pathlib import Path",
    "from shotbank.client import ShotbankClient, account_from_key_file",
    "",
    'account = account_from_key_file(Path.home() / ".shotbank/wallet.key")  # the licence holder\'s key',
    `client = ShotbankClient(${quote(origin)}, account=account)`,
    `client.version(${quote(datasetId)}, ${number}).download(${quote(folder)})`,
  ].join("\n");
}

/** A folder name for a version: `data/<slug>-v<n>` (slug reduced to safe characters). */
export function downloadFolder(slug: string, number: number): string {
  const safe = slug.toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "") || "dataset";
  return `data/${safe}-v${number}`;
}
