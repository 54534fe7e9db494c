// The front end's unit tests live in js/; build/ holds unpacked sdists (scripts/check_wheel.sh)
// whose copies of the tests must not run.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: { include: ["js/**/*.test.ts"], exclude: ["**/node_modules/**", "build/**"] },
});
