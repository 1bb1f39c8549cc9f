#!/usr/bin/env node
// The demo's HTML view is checked in a real headless browser: Debian's chromium, driven by
// playwright-core (no browser download from npm). Installs it with apt-get when missing and we
// are root; otherwise says what to do. Skipped with SKIP_BROWSER_INSTALL=1 (then that test fails).
import { execSync } from "node:child_process";
import { existsSync } from "node:fs";

const path = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
if (existsSync(path) || process.env.SKIP_BROWSER_INSTALL === "1") process.exit(0);
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const hasApt = existsSync("/usr/bin/apt-get");
if (!isRoot || !hasApt) {
  console.error(
    `chromium not found at ${path}: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH`,
  );
  process.exit(0); // the browser test itself reports the failure with this message
}
console.log("installing Debian's chromium for the demo's browser test (apt-get)...");
try {
  execSync("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null", {
    stdio: "inherit",
    shell: "/bin/bash",
  });
} catch (e) {
  console.error(`apt-get could not install chromium: ${e.message}`);
}
