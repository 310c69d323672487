// The README's Next.js setup: the collector on a same-site path (/t/…), so the browser
// sends beacons with no CORS. The test builds twice (Turbopack, webpack) into two
// distDirs and points /t at its own collector.
import type { NextConfig } from "next";

const collector = process.env.MAU_COLLECTOR ?? "https://collect.example.com";

const config: NextConfig = {
  distDir: process.env.NEXT_DIST_DIR ?? ".next",
  // This folder, not the repository around it (it has a lockfile of its own).
  turbopack: { root: process.cwd() },
  outputFileTracingRoot: process.cwd(),
  async rewrites() {
    return [{ source: "/t/:path*", destination: `${collector}/:path*` }];
  },
};

export default config;
