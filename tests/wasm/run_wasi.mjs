// Runs a wasm32-wasi command module under Node's WASI:  node run_wasi.mjs prog.wasm [args...]
// The module sees its arguments and BITNET_KERNELS (if set), and no files; its exit status
// becomes Node's.  Node 18 needs --experimental-wasi-unstable-preview1; later versions ignore it.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import process from 'node:process';

const [file, ...args] = process.argv.slice(2);
if (!file) {
  console.error('usage: node run_wasi.mjs prog.wasm [args...]');
  process.exit(2);
}
const env = {};
if (process.env.BITNET_KERNELS !== undefined) env.BITNET_KERNELS = process.env.BITNET_KERNELS;
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: wasi.wasiImport });
process.exitCode = wasi.start(instance);
