// `make client` runs this: the committed contract in, src/generated/ out (wiped and rewritten),
// formatted by the pinned Prettier so that a fresh generation is byte for byte the committed one.
// @hey-api/openapi-ts is pinned to an exact version in package.json: it does not follow semver.
import { defineConfig } from "@hey-api/openapi-ts";

export default defineConfig({
  input: "../../specs/001-backend-api-data/contracts/openapi.yaml",
  output: {
    path: "src/generated",
    postProcess: ["prettier"],
  },
  // The fetch client is generated into the output too: no runtime dependency.
  plugins: ["@hey-api/client-fetch", "@hey-api/typescript", "@hey-api/sdk"],
});
