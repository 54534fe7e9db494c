// Build the prebuilt JupyterLab extension into aefi_widget/labextension/ (package.json's
// "jupyterlab.outputDir"), offline: `npm run build:lab` (after `tsc -p tsconfig.lab.json`).
//
// Why not `jupyter labextension build .`: since JupyterLab 4.6 that command resolves the core
// application's package.json by downloading @jupyterlab/core-meta from npm or GitHub, which a
// build machine without internet cannot do. The installed jupyterlab Python package carries
// the same file in its staging/ folder; @jupyterlab/builder reads it from --core-path.
//
// The interpreter is $PYTHON, else python3, else python: the one that builds the wheel (pip's
// build environment, or --no-isolation's) must have jupyterlab (pyproject's build requires).
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import process from "node:process";

const PROBE =
  "import os, jupyterlab; print(os.path.join(os.path.dirname(jupyterlab.__file__), 'staging'))";

function corePath() {
  const tried = [];
  for (const python of [process.env.PYTHON, "python3", "python"].filter(Boolean)) {
    const found = spawnSync(python, ["-c", PROBE], { encoding: "utf8" });
    if (found.status === 0) return found.stdout.trim();
    tried.push(`${python}: ${(found.stderr || String(found.error)).trim().split("\n").pop()}`);
  }
  console.error(
    "build:lab needs the jupyterlab Python package (pip install 'jupyterlab>=4,<5') to read " +
      `its core package.json; tried\n  ${tried.join("\n  ")}`,
  );
  process.exit(1);
}

const require = createRequire(import.meta.url);
const builder = require.resolve("@jupyterlab/builder/lib/build-labextension.js");
const built = spawnSync(process.execPath, [builder, "--core-path", corePath(), "."], {
  stdio: "inherit",
});
process.exit(built.status ?? 1);
