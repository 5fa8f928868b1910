// Runs a wasm32-unknown-unknown binary's exported `main` under Node (no
// imports: the target has no host API) and exits with its return code; a
// trap (a panic, or std::time::Instant::now on this target) exits 1.
import { readFileSync } from "node:fs";

const file = process.argv[2];
const { instance } = await WebAssembly.instantiate(readFileSync(file), {});
let code;
try {
  code = instance.exports.main(0, 0);
} catch (e) {
  console.error(`${file}: trapped: ${e}`);
  process.exit(1);
}
console.log(`${file}: main returned ${code}`);
process.exit(code === 0 ? 0 : 1);
