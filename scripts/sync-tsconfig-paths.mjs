#!/usr/bin/env node
// Writes tsconfig.build-base.json's `paths` from the packages' exports maps (workspace-sources.mjs), so a new
// package or entry point type-checks against src/ without a hand-kept list. `check-packages.mjs` verifies it.
import { readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { workspaceSources } from "./workspace-sources.mjs";

const root = new URL("..", import.meta.url).pathname;
const file = join(root, "tsconfig.build-base.json");
const config = JSON.parse(readFileSync(file, "utf8"));
const paths = {};
for (const [spec, src] of workspaceSources()) paths[spec] = [`./${relative(root, src)}`];
config.compilerOptions.paths = paths;
writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
