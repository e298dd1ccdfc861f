// Reference side of the EIP-712 tests: viem hashes and signs the typed data it is given.
// Reads one JSON request on stdin, writes one JSON answer on stdout.
//   {"typedData": {types, primaryType, domain, message}, "privateKey": "0x..."}
//     -> {"digest": "0x...", "signature": "0x..."}
// Integers travel as decimal strings (JSON numbers lose precision above 2**53); every
// uint/int field of the primary type and the domain's chainId become BigInts here.
import { hashTypedData } from "viem";
import { privateKeyToAccount } from "viem/accounts";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { typedData, privateKey } = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const message = { ...typedData.message };
for (const field of typedData.types[typedData.primaryType]) {
  if (/^u?int\d*$/.test(field.type)) message[field.name] = BigInt(message[field.name]);
}
const request = {
  domain: { ...typedData.domain, chainId: BigInt(typedData.domain.chainId) },
  types: typedData.types,
  primaryType: typedData.primaryType,
  message,
};
const digest = hashTypedData(request);
const signature = await privateKeyToAccount(privateKey).signTypedData(request);
process.stdout.write(JSON.stringify({ digest, signature }));
