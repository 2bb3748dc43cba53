import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/setup/build-dist.ts", "test/setup/build-guests.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Guests are real 12 MB components; two cores run two files at a time.
    maxWorkers: 2,
  },
});
