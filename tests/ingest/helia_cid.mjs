// Independent CID oracle for tests/ingest/test_cid.py.
//
// Prints one line per file argument: the CIDv1 that Helia's UnixFS importer computes
// with Kubo's `ipfs add --cid-version 1 --raw-leaves` settings (fixed 262144-byte
// chunks, balanced layout with at most 174 links per node, raw leaves). It uses
// @helia/unixfs over a black-hole blockstore: no libp2p node, no network, no blocks
// kept in memory, so it is offline by construction.
//
// Usage: node tests/ingest/helia_cid.mjs FILE...
import { createReadStream } from 'node:fs'
import { unixfs } from '@helia/unixfs'
import { BlackHoleBlockstore } from 'blockstore-core/black-hole'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'

const KUBO_OPTIONS = {
  cidVersion: 1,
  rawLeaves: true,
  reduceSingleLeafToSelf: true,
  chunker: fixedSize({ chunkSize: 262144 }),
  layout: balanced({ maxChildrenPerNode: 174 })
}

const fs = unixfs({ blockstore: new BlackHoleBlockstore() })
for (const path of process.argv.slice(2)) {
  const cid = await fs.addByteStream(createReadStream(path, { highWaterMark: 1 << 20 }), KUBO_OPTIONS)
  process.stdout.write(`${cid.toV1().toString()}\n`)
}
