// Reference side of the Merkle tests: the real @openzeppelin/merkle-tree package.
// Reads one JSON request on stdin, writes one JSON answer on stdout.
//   {"op": "build", "cases": [{"encoding": [...], "values": [[...], ...]}]}
//     -> [{"root", "proofs": [[...] per value index], "dump"}]
//   {"op": "check", "cases": [{"dump": {...}, "proofs": [[...] per value index]}]}
//     -> [{"root", "valid": [bool per value index]}]   (load() validates the whole tree)
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString("utf8"));

let answer;
if (request.op === "build") {
  answer = request.cases.map(({ encoding, values }) => {
    const tree = StandardMerkleTree.of(values, encoding);
    const proofs = values.map((_, i) => tree.getProof(i));
    return { root: tree.root, proofs, dump: tree.dump() };
  });
} else if (request.op === "check") {
  answer = request.cases.map(({ dump, proofs }) => {
    const tree = StandardMerkleTree.load(dump);
    const valid = proofs.map((proof, i) =>
      StandardMerkleTree.verify(tree.root, dump.leafEncoding, tree.at(i), proof),
    );
    return { root: tree.root, valid };
  });
} else {
  throw new Error(`unknown op ${request.op}`);
}
process.stdout.write(JSON.stringify(answer));
