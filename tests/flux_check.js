// Checks Flux scripts with the Flux language's own parser and semantic analysis (types and the
// signatures of builtin functions), compiled to WebAssembly in InfluxData's flux-lsp-node.
// Reads {"name": "flux text", ...} as JSON on stdin; prints {"name": true|false, ...}.
// NODE_PATH must reach the package (scripts/setup.sh --test installs it in .cache/flux).
const flux = require("@influxdata/flux-lsp-node");

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const verdicts = {};
  for (const [name, text] of Object.entries(JSON.parse(input))) {
    let ok = false;
    try {
      const script = new flux.Flux(text);
      ok = script.is_valid();
      script.free();
    } catch (e) {
      ok = false; // the checker throws on some syntax errors instead of answering false
    }
    verdicts[name] = ok;
  }
  process.stdout.write(JSON.stringify(verdicts));
});
